/**
 * The peer port: POST /peer/v1/<method> with a msgpack body, answered with msgpack. It is kept
 * apart from the client port so that operators can firewall it, authenticate it with its own
 * secret, and so that client overload never starves replication traffic of sockets.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { PEER_CONTENT_TYPE, PEER_METHODS, PeerDecodeError, decodeBatchRequest, decodeRequest, type BatchResult, packMessage, unpackMessage, type PeerMethod, type PeerRequest, type PeerResponse } from './peerMessages';

export type PeerHandlers = { [M in PeerMethod]: (request: PeerRequest<M>) => Promise<PeerResponse<M>> };

export interface PeerErrorBody {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

export interface PeerServerOptions {
  readonly handlers: PeerHandlers;
  /** Maps an error thrown by a handler to a status and catalogue code. */
  readonly describeError: (error: unknown) => PeerErrorBody;
  /** The largest peer message accepted; a replicated object plus framing. */
  readonly bodyLimitBytes: number;
  /** When set, every call must carry `Authorization: Bearer <secret>`. */
  readonly peerSecret?: string;
  /**
   * Calls being handled at once, each call of a batch counted; a request that would pass it is
   * answered 503 OVERLOADED (with Retry-After) before any of its calls runs.
   */
  readonly inFlightMax: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  readonly https?: { readonly key: Buffer; readonly cert: Buffer };
}

/** Seconds a calling node should wait after OVERLOADED; the caller's quorum logic decides what to do. */
const OVERLOADED_RETRY_AFTER_SECONDS = 1;

/**
 * Checks `Authorization: Bearer <secret>` in constant time: both sides are MACed under a key
 * drawn at start-up, so the comparison takes the same time whatever the length or content of
 * what was sent (a plain length check first would tell an attacker the secret's length).
 */
function secretChecker(peerSecret: string | undefined): ((header: string | undefined) => boolean) | undefined {
  if (peerSecret === undefined || peerSecret === '') return undefined;
  const key = randomBytes(32);
  const mac = (text: string) => createHmac('sha256', key).update(text, 'utf8').digest();
  const expected = mac(`Bearer ${peerSecret}`);
  return (header) => timingSafeEqual(mac(header ?? ''), expected);
}

export function buildPeerServer(options: PeerServerOptions): FastifyInstance {
  const serverOptions: FastifyServerOptions & { https?: { key: Buffer; cert: Buffer } } = {
    logger: false,
    bodyLimit: options.bodyLimitBytes,
    keepAliveTimeout: 60_000,
    ...(options.https === undefined ? {} : { https: { key: options.https.key, cert: options.https.cert } }),
  };
  // As in the client app: with `https` the instance serves through https.Server, same routes.
  const app = Fastify(serverOptions) as unknown as FastifyInstance;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const secretMatches = secretChecker(options.peerSecret);
  let inFlight = 0;

  const reply = (status: number, body: unknown) => ({ status, payload: packMessage(body) });

  /** Runs each call of a batch on its handler; one call's failure does not fail the others. */
  const runBatch = async (calls: readonly { method: PeerMethod; request: unknown }[]): Promise<BatchResult[]> => {
    return Promise.all(
      calls.map(async (call): Promise<BatchResult> => {
        try {
          const handler = options.handlers[call.method] as (r: unknown) => Promise<unknown>;
          return { ok: true, response: await handler(call.request) };
        } catch (error) {
          const described = options.describeError(error);
          return { ok: false, code: described.code, message: described.message };
        }
      }),
    );
  };

  app.post<{ Params: { method: string } }>('/peer/v1/:method', async (request, response) => {
    const send = (r: { status: number; payload: Buffer }) => response.code(r.status).header('content-type', PEER_CONTENT_TYPE).send(r.payload);
    if (secretMatches !== undefined && !secretMatches(request.headers.authorization)) {
      return send(reply(401, { code: 'UNAUTHORIZED', message: 'peer credentials missing or wrong' }));
    }
    const method = request.params.method as PeerMethod | 'batch';
    if (method !== 'batch' && !PEER_METHODS.includes(method)) return send(reply(404, { code: 'NOT_FOUND', message: `no peer method ${request.params.method}` }));
    const body = request.body;
    if (!(body instanceof Uint8Array)) return send(reply(400, { code: 'PEER_MESSAGE_INVALID', message: 'bad peer message: body missing' }));
    let calls: { method: PeerMethod; request: unknown }[] | undefined;
    try {
      calls = method === 'batch' ? decodeBatchRequest(unpackMessage(body)) : undefined;
    } catch (error) {
      if (error instanceof PeerDecodeError) return send(reply(400, { code: 'PEER_MESSAGE_INVALID', message: error.message }));
      throw error;
    }
    const weight = calls === undefined ? 1 : Math.max(1, calls.length);
    if (inFlight + weight > options.inFlightMax && inFlight > 0) {
      response.header('retry-after', String(OVERLOADED_RETRY_AFTER_SECONDS));
      return send(reply(503, { code: 'OVERLOADED', message: 'peer port is overloaded' }));
    }
    inFlight += weight;
    try {
      if (method === 'batch') return send(reply(200, { results: await runBatch(calls ?? []) }));
      const decoded = decodeRequest[method](unpackMessage(body));
      const handler = options.handlers[method] as (r: unknown) => Promise<unknown>;
      return send(reply(200, await handler(decoded)));
    } catch (error) {
      if (error instanceof PeerDecodeError) return send(reply(400, { code: 'PEER_MESSAGE_INVALID', message: error.message }));
      const described = options.describeError(error);
      return send(reply(described.status, { code: described.code, message: described.message }));
    } finally {
      inFlight -= weight;
    }
  });
  return app;
}
