/**
 * The client HTTP API as a fastify instance, built from its dependencies so unit tests can drive
 * it with inject() over an in-memory engine, and server.ts can serve it over a socket.
 *
 * Cross-cutting rules live here: raw bodies for every content type, one error handler that speaks
 * only catalogue codes, 404/405 from the catalogue, request metrics, and the guards that run
 * before a key route touches anything (shutdown, overload, authentication).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyServerOptions, type onRequestHookHandler } from 'fastify';
import type { Logger } from '../log';
import type { NodeMetrics, Operation } from '../metrics';
import { QueueDelayGovernor, type QueueDelayLimits } from './admission';
import { scopeGuard, TokenSet, type ScopedToken } from './auth';
import type { ContextCodec } from './contextToken';
import { DynamoError, OVERLOADED_RETRY_AFTER_SECONDS, isErrorCode } from './errors';
import { registerKeyRoutes } from './keyRoutes';
import type { KeyValueService } from './keyValueService';
import { registerSystemRoutes, type StatusSource } from './systemRoutes';
import { JSON_CONTENT_TYPE, sendError, type PathMethods } from './reply';
import type { ValidationLimits } from './validation';


declare module 'fastify' {
  interface FastifyContextConfig {
    /** The `operation` label of the request metrics. */
    operation?: Operation;
  }
}

export interface AppLimits extends ValidationLimits {
  readonly maxInFlightRequests: number;
  /**
   * Overload shedding on queueing delay (admission.ts). Absent: off, only maxInFlightRequests
   * bounds what the node takes on.
   */
  readonly queueDelay?: Omit<QueueDelayLimits, 'inFlightMax'>;
}

export interface AppDeps {
  readonly service: KeyValueService;
  readonly contexts: ContextCodec;
  readonly metrics: NodeMetrics;
  readonly logger: Logger;
  readonly limits: AppLimits;
  readonly status: StatusSource;
  /**
   * A token with the admin scope (the one token of earlier versions, DYNAMOKV_AUTH_TOKEN). With it
   * or `tokens`, every /v1 route but the OpenAPI document needs a bearer token (auth.ts).
   */
  readonly authToken?: string;
  /** Client tokens with their scopes; see auth.ts. */
  readonly tokens?: readonly ScopedToken[];
  /** Serve HTTPS with this key and certificate (PEM) instead of plain HTTP. */
  readonly https?: { readonly key: Buffer; readonly cert: Buffer };
  /**
   * More route modules (e.g. the cluster's ring and admin routes). Each registers its routes and
   * returns their paths, which then get the same 405 handling. Bodies arrive as Buffers; use
   * jsonBody() from reply.ts for JSON.
   */
  /** Further routes; they receive the key routes' guards (auth, in-flight, shutdown). */
  /**
   * Why the node is not ready beyond start-up and shutdown (e.g. not admitted to a cluster yet),
   * or undefined when nothing else holds readiness back.
   */
  readonly readinessProblem?: () => string | undefined;
  readonly extraRoutes?: readonly ((fastify: FastifyInstance, guards: readonly onRequestHookHandler[]) => PathMethods[])[];
}

/** The app plus the controls server.ts needs for readiness and shutdown. */
export interface App {
  readonly fastify: FastifyInstance;
  /** Client requests currently admitted by the in-flight guard. */
  inFlightRequests(): number;
  /** Marks the node as stopping: /readyz turns 503 and key routes refuse new requests. */
  beginShutdown(): void;
  setReady(ready: boolean): void;
}

/** Methods answered with 405 on a known path; others reach the 404 handler. */
const COMMON_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'] as const;
/**
 * A request must arrive completely (headers and body) within this time. Without it a client
 * that trickles a body holds an in-flight slot forever, and maxInFlightRequests of them would
 * lock every other client out.
 */
const REQUEST_RECEIVE_TIMEOUT_MS = 30_000;
/** Headroom for percent-encoding (3 characters per byte) so over-long names reach validation. */
const PARAM_CHARS_MAX = 65536;

export function buildApp(deps: AppDeps): App {
  // `arrivals` counts client requests since the last queueing-delay sample (only while shedding is on).
  const state = { inFlight: 0, arrivals: 0, stopping: false, ready: false };
  const governor = deps.limits.queueDelay === undefined ? undefined : new QueueDelayGovernor({ ...deps.limits.queueDelay, inFlightMax: deps.limits.maxInFlightRequests });
  const options: FastifyServerOptions & { https?: { key: Buffer; cert: Buffer } } = {
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request log lines would cost more than the request; errors are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request: building one (bindings, redaction) cost more than the request
    // routing itself, and only errors are logged, with the request id in the line.
    childLoggerFactory: (logger) => logger,
    bodyLimit: deps.limits.maxValueBytes,
    requestTimeout: REQUEST_RECEIVE_TIMEOUT_MS,
    exposeHeadRoutes: false,
    // Our own guard answers from the catalogue while stopping (fastify's default body is not).
    return503OnClosing: false,
    routerOptions: { maxParamLength: PARAM_CHARS_MAX },
    frameworkErrors: (error, request, reply) => {
      sendError(reply, translateRouterError(error, request.raw.url ?? ''));
    },
    clientErrorHandler: answerClientError,
    ...(deps.https === undefined ? {} : { https: { key: deps.https.key, cert: deps.https.cert } }),
    ...(governor === undefined ? {} : { serverFactory: sheddingServerFactory(governor, deps.metrics, deps.https, state) }),
  };
  // With `https` fastify serves through https.Server; the routes and hooks are the same, so the
  // instance is used through the plain-HTTP type everywhere else.
  const fastify = Fastify(options) as unknown as FastifyInstance;

  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  fastify.setErrorHandler((error: FastifyError, request, reply) => {
    const translated = translateError(error, deps.limits);
    if (translated.code === 'INTERNAL') request.log.error({ err: error, reqId: request.id, url: request.routeOptions.url }, 'request failed');
    // Every 503 tells the client when to come back, whichever path refused the request.
    if (translated.status === 503 && translated.headers['retry-after'] === undefined) reply.header('retry-after', String(OVERLOADED_RETRY_AFTER_SECONDS));
    sendError(reply, translated);
  });
  fastify.setNotFoundHandler((_request, reply) => {
    sendError(reply, new DynamoError('NOT_FOUND'));
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    deps.metrics.requestFinished(request.routeOptions.config.operation ?? 'other', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  const stoppingGuard: onRequestHookHandler = (_request, reply, done) => {
    if (!state.stopping) return done();
    reply.header('connection', 'close');
    done(new DynamoError('OVERLOADED', 'The node is shutting down; retry on another node.'));
  };
  const inFlightGuard: onRequestHookHandler = (_request, reply, done) => {
    if (state.inFlight >= deps.limits.maxInFlightRequests) {
      deps.metrics.requestShed('full');
      return done(new DynamoError('OVERLOADED'));
    }
    state.inFlight++;
    // 'close' fires after the answer was sent and also when the client went away first, so the
    // slot is always returned ('finish' alone would leak a slot per aborted request).
    reply.raw.once('close', () => {
      state.inFlight--;
    });
    done();
  };
  const inFlightRequests = (): number => state.inFlight;
  if (governor !== undefined) {
    // A stall no request waited through is no queue: start-up, or a pause of an idle node.
    const sampler = sampleQueueDelay(governor, () => {
      const waited = state.ready && (state.arrivals > 0 || state.inFlight > 0);
      state.arrivals = 0;
      return waited;
    });
    fastify.addHook('onClose', (_instance, done) => {
      sampler.stop();
      done();
    });
  }
  deps.metrics.observeLoad(() => {
    const now = governor?.state();
    return { inFlight: state.inFlight, inFlightLimit: now?.inFlightLimit ?? deps.limits.maxInFlightRequests, queueDelayMs: now?.queueDelayMs ?? 0, overloaded: now?.overloaded === true };
  });
  const tokens = [...(deps.tokens ?? []), ...(deps.authToken === undefined ? [] : [{ scope: 'admin' as const, token: deps.authToken }])];
  const authGuard = tokens.length === 0 ? undefined : scopeGuard(new TokenSet(tokens));
  const guards = authGuard === undefined ? [stoppingGuard, inFlightGuard] : [stoppingGuard, inFlightGuard, authGuard];

  const keyPaths = registerKeyRoutes(fastify, { service: deps.service, contexts: deps.contexts, metrics: deps.metrics, limits: deps.limits, guards });
  const systemPaths = registerSystemRoutes(fastify, {
    metrics: deps.metrics,
    status: deps.status,
    inFlightRequests,
    readiness: () => (state.stopping ? 'stopping' : !state.ready ? 'starting' : deps.readinessProblem?.()),
    statusGuards: authGuard === undefined ? [] : [authGuard],
  });
  const extraPaths = (deps.extraRoutes ?? []).flatMap((register) => register(fastify, guards));
  rejectOtherMethods(fastify, [...keyPaths, ...systemPaths, ...extraPaths]);

  return {
    fastify,
    inFlightRequests,
    beginShutdown: () => {
      state.stopping = true;
    },
    setReady: (ready) => {
      state.ready = ready;
    },
  };
}

/** How often the event loop's queueing delay is sampled: a timer that should run this often. */
const QUEUE_DELAY_SAMPLE_MS = 10;

/**
 * Samples the event loop's delay into the governor until stopped; the timer never keeps the
 * process alive. A sample counts as 0 unless `requestsWaited()` says client requests arrived or
 * were in progress since the last one.
 */
function sampleQueueDelay(governor: QueueDelayGovernor, requestsWaited: () => boolean): { stop(): void } {
  let dueMs = performance.now() + QUEUE_DELAY_SAMPLE_MS;
  const timer = setInterval(() => {
    const nowMs = performance.now();
    governor.observe(requestsWaited() ? Math.max(0, nowMs - dueMs) : 0, nowMs);
    dueMs = nowMs + QUEUE_DELAY_SAMPLE_MS;
  }, QUEUE_DELAY_SAMPLE_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** The answer to a request refused above the lowered in-flight limit, built once. */
const SHED_BODY = Buffer.from(JSON.stringify(new DynamoError('OVERLOADED', 'The node is overloaded: requests wait longer than it accepts; retry later or on another node.').body()));
const SHED_HEADERS = { 'content-type': JSON_CONTENT_TYPE, 'content-length': String(SHED_BODY.length), 'retry-after': String(OVERLOADED_RETRY_AFTER_SECONDS) };
/** Key routes are shed; health, metrics, status, bucket, ring and admin routes never are. */
const SHED_PATH_PREFIX = '/v1/buckets/';
const SHED_PATH_PART = '/keys/';

/**
 * The HTTP server with the in-flight limit check in front of fastify. A refused request costs the node
 * its HTTP parsing and one prebuilt answer: no routing, hooks, body or error handler, which took
 * about as long again. That matters because an open-loop client keeps sending, and every refusal
 * is time the node does not spend serving.
 */
function sheddingServerFactory(governor: QueueDelayGovernor, metrics: NodeMetrics, https: AppDeps['https'], load: { arrivals: number; inFlight: number }) {
  return (handler: (request: IncomingMessage, response: ServerResponse) => void, options: Record<string, unknown>): Server => {
    const listener = (request: IncomingMessage, response: ServerResponse): void => {
      load.arrivals++;
      if (!governor.refuses(load.inFlight) || !isKeyPath(request.url)) {
        handler(request, response);
        return;
      }
      metrics.requestShed('delay');
      metrics.requestFinished(keyOperationOf(request), 503, 0);
      response.writeHead(503, SHED_HEADERS).end(SHED_BODY);
    };
    const server = https === undefined ? createServer(listener) : (createHttpsServer({ key: https.key, cert: https.cert }, listener) as unknown as Server);
    // What fastify sets on the servers it creates itself.
    server.keepAliveTimeout = options.keepAliveTimeout as number;
    server.requestTimeout = options.requestTimeout as number;
    server.setTimeout(options.connectionTimeout as number);
    return server;
  };
}

function isKeyPath(url: string | undefined): boolean {
  return url !== undefined && url.startsWith(SHED_PATH_PREFIX) && url.includes(SHED_PATH_PART, SHED_PATH_PREFIX.length);
}

/** The metrics' operation of a refused key request, from its method. */
function keyOperationOf(request: IncomingMessage): Operation {
  return request.method === 'GET' ? 'get' : request.method === 'PUT' ? 'put' : request.method === 'DELETE' ? 'delete' : 'other';
}

/** Fastify's own errors become catalogue codes; anything unknown is INTERNAL (and logged). */
function translateError(error: FastifyError, limits: AppLimits): DynamoError {
  if (error instanceof DynamoError) return error;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new DynamoError('VALUE_TOO_LARGE', `The value is larger than ${limits.maxValueBytes} bytes, the limit of this node.`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new DynamoError('CONTENT_TYPE_INVALID');
    default:
      break;
  }
  if (isErrorCode(error.code)) return new DynamoError(error.code);
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new DynamoError('REQUEST_INVALID', `The request is malformed: ${error.message}`);
  return new DynamoError('INTERNAL');
}

/**
 * The router refuses a path whose percent-escapes do not decode to UTF-8. Say which name was
 * bad: /v1/buckets/{bucket}/keys/{key} has the bucket in segment 3.
 */
function translateRouterError(error: FastifyError, rawUrl: string): DynamoError {
  const segments = (rawUrl.split('?')[0] ?? '').split('/');
  if (segments[1] === 'v1' && segments[2] === 'buckets') {
    const bucketDecodes = tryDecode(segments[3] ?? '');
    const code = bucketDecodes ? 'KEY_INVALID' : 'BUCKET_INVALID';
    return new DynamoError(code, `The ${bucketDecodes ? 'key' : 'bucket'} is not valid percent-encoded UTF-8 or is too long.`);
  }
  return error.code === 'FST_ERR_BAD_URL' ? new DynamoError('REQUEST_INVALID', 'The path is not valid percent-encoded UTF-8.') : new DynamoError('NOT_FOUND');
}

function tryDecode(segment: string): boolean {
  try {
    decodeURIComponent(segment);
    return true;
  } catch {
    return false;
  }
}

/**
 * A known path with an unsupported method answers 405 with Allow, not fastify's 404. The guard
 * runs in onRequest, before the body is read, so a refused request costs nothing.
 */
function rejectOtherMethods(fastify: FastifyInstance, paths: readonly PathMethods[]): void {
  for (const { url, methods } of paths) {
    const others = COMMON_METHODS.filter((m) => !methods.includes(m));
    const allow = [...methods].sort().join(', ');
    const refuse = () => new DynamoError('METHOD_NOT_ALLOWED', `Allowed methods: ${allow}.`, { allow });
    fastify.route({
      method: others,
      url,
      config: { operation: 'other' },
      onRequest: (_request, _reply, done) => done(refuse()),
      handler: async () => {
        throw refuse();
      },
    });
  }
}

/**
 * Answers a request Node's HTTP parser refused (bad syntax, oversized headers, a request that did
 * not arrive within the receive timeout) with a catalogue body instead of fastify's default one,
 * then closes the connection: after a parse error the byte stream cannot be trusted.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const reason =
    error.code === 'HPE_HEADER_OVERFLOW' ? 'The request headers are too large.' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'The request did not arrive in time.' : 'The request is not valid HTTP/1.1.';
  const body = JSON.stringify(new DynamoError('REQUEST_INVALID', reason).body());
  if (socket.writable) {
    socket.write(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}
