/**
 * The peer port: POST /peer/v1/<method> with a msgpack body, answered with msgpack. It is kept
 * apart from the client port so that operators can firewall it, authenticate it with its own
 * secret, and so that client overload never starves replication traffic of sockets.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
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
  /** Calls being handled at once; past this the peer answers 503 OVERLOADED. */
  readonly inFlightMax: number;
}

export function buildPeerServer(options: PeerServerOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: options.bodyLimitBytes, keepAliveTimeout: 60_000 });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const secret = options.peerSecret ? Buffer.from(`Bearer ${options.peerSecret}`) : undefined;
  let inFlight = 0;

  const reply = (status: number, body: unknown) => ({ status, payload: packMessage(body) });

  /** Runs each call of a batch on its handler; one call's failure does not fail the others. */
  const runBatch = async (body: Uint8Array): Promise<BatchResult[]> => {
    const calls = decodeBatchRequest(unpackMessage(body));
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
    if (secret !== undefined) {
      const given = Buffer.from(String(request.headers.authorization ?? ''));
      if (given.length !== secret.length || !timingSafeEqual(given, secret)) return send(reply(401, { code: 'UNAUTHORIZED', message: 'peer credentials missing or wrong' }));
    }
    const method = request.params.method as PeerMethod | 'batch';
    if (method !== 'batch' && !PEER_METHODS.includes(method)) return send(reply(404, { code: 'NOT_FOUND', message: `no peer method ${request.params.method}` }));
    if (inFlight >= options.inFlightMax) return send(reply(503, { code: 'OVERLOADED', message: 'peer port is overloaded' }));
    inFlight++;
    try {
      const body = request.body;
      if (!(body instanceof Uint8Array)) throw new PeerDecodeError('body missing');
      if (method === 'batch') return send(reply(200, { results: await runBatch(body) }));
      const decoded = decodeRequest[method](unpackMessage(body));
      const handler = options.handlers[method] as (r: unknown) => Promise<unknown>;
      return send(reply(200, await handler(decoded)));
    } catch (error) {
      if (error instanceof PeerDecodeError) return send(reply(400, { code: 'PEER_MESSAGE_INVALID', message: error.message }));
      const described = options.describeError(error);
      return send(reply(described.status, { code: described.code, message: described.message }));
    } finally {
      inFlight--;
    }
  });
  return app;
}
