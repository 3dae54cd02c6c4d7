/**
 * DynamoClient: the TypeScript client of dynamokv.
 *
 * It speaks the node's HTTP API, handles causal contexts for the caller (they are opaque strings,
 * passed through untouched), resolves siblings with a callback when asked, and fails over between
 * endpoints (see transport.ts for the exact rule). By default it routes each key request to a
 * primary replica of the key, from the ring it reads with GET /v1/ring (see routing.ts).
 */
import * as admin from './admin';
import { DynamoError, errorFromResponse, parseErrorBody } from './errors';
import { RING_VERSION_HEADER, RingRouter, routingRingOf, type RoutingMode, type RoutingRing } from './routing';
import { Transport, type HttpRequest, type HttpResponse } from './transport';
import {
  CONTEXT_HEADER,
  DEFAULT_BINARY_TYPE,
  DEFAULT_TEXT_TYPE,
  decodeSiblingsBody,
  normaliseResolved,
  parseDate,
  protocolError,
  type GetResult,
  type PutResult,
  type Quorum,
  type Sibling,
  type SiblingResolver,
} from './types';

export interface DynamoClientOptions {
  /** Client API base URLs, e.g. ['http://127.0.0.1:8080', 'http://127.0.0.1:8081']. */
  readonly endpoints: readonly string[];
  /** Limit for one attempt against one endpoint. Default 5000. */
  readonly timeoutMs?: number;
  /** Extra attempts on connection errors, timeouts and 503. Default: one per other endpoint, at least 2. */
  readonly retries?: number;
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  /**
   * PEM CA certificate(s) that https endpoints' certificates must chain to, for nodes with a
   * private CA (e.g. the content of DYNAMOKV_CA_FILE). Default: the system's CAs.
   */
  readonly ca?: string | Buffer;
  /** Used by every `get` that finds siblings, unless the call passes its own or `false`. */
  readonly resolveSiblings?: SiblingResolver;
  /** Longest wait honoured from Retry-After before retrying an endpoint. Default 2000. */
  readonly retryAfterMsMax?: number;
  /** First back-off before retrying an endpoint that sent no Retry-After. Default 50. */
  readonly backoffMsBase?: number;
  /** Keep-alive connections per endpoint. Default 16. */
  readonly connectionsPerEndpoint?: number;
  /** Largest response accepted. Default 64 MiB. */
  readonly responseBytesMax?: number;
  /**
   * 'partition-aware' (default): send each key request to a primary replica of the key that looks
   * up, by the ring from GET /v1/ring, then fail over as usual. 'any': the endpoints in rotation.
   */
  readonly routing?: RoutingMode;
  /** The ring is fetched again at the first request after this long. Default 10000. */
  readonly ringRefreshIntervalMs?: number;
}

/** Two ring fetches start at least this far apart, whatever a node announces. */
const RING_REFRESH_GAP_MS_MIN = 1000;
/** An endpoint that did not answer is not routed to for this long (the failover order still reaches it). */
const ROUTE_SUSPECT_MS = 5000;

export interface ReadOptions {
  /** Strict quorum of primary replicas; 503 QUORUM_UNAVAILABLE rather than a stale answer. */
  readonly consistent?: boolean;
  readonly r?: Quorum;
  readonly pr?: Quorum;
}

export interface GetOptions extends ReadOptions {
  /** Resolver for this call; `false` turns off the client-wide one. */
  readonly resolveSiblings?: SiblingResolver | false;
}

export interface WriteOptions {
  readonly w?: Quorum;
  readonly dw?: Quorum;
  readonly pw?: Quorum;
}

export interface PutOptions extends WriteOptions {
  /** The context of the read this write is based on; without it the write is concurrent with all others. */
  readonly context?: string;
  /** Default: text/plain; charset=utf-8 for strings, application/octet-stream for bytes. */
  readonly contentType?: string;
  /** Answer with the state after the write (as `get` would). */
  readonly returnBody?: boolean;
}

export interface DeleteOptions extends WriteOptions {
  readonly context?: string;
  /**
   * Without a context, the client first reads the key to get one, so the delete replaces exactly
   * what exists instead of standing beside it as a concurrent tombstone. Default true.
   */
  readonly fetchContext?: boolean;
}

export interface UpdateOptions extends ReadOptions, WriteOptions {
  /** Content type of the written value when the resolver does not give one. */
  readonly contentType?: string;
}

const QUORUM_NAMES = new Set(['one', 'quorum', 'all']);

export class DynamoClient {
  private readonly transport: Transport;
  private readonly resolveSiblings: SiblingResolver | undefined;
  private readonly router: RingRouter;

  constructor(options: DynamoClientOptions) {
    const endpointCount = options.endpoints.length;
    this.transport = new Transport({
      endpoints: options.endpoints,
      timeoutMs: positive(options.timeoutMs ?? 5000, 'timeoutMs'),
      retries: nonNegative(options.retries ?? Math.max(2, endpointCount - 1), 'retries'),
      token: options.token,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      retryAfterMsMax: nonNegative(options.retryAfterMsMax ?? 2000, 'retryAfterMsMax'),
      backoffMsBase: nonNegative(options.backoffMsBase ?? 50, 'backoffMsBase'),
      connectionsPerEndpoint: positive(options.connectionsPerEndpoint ?? 16, 'connectionsPerEndpoint'),
      responseBytesMax: positive(options.responseBytesMax ?? 64 * 1024 * 1024, 'responseBytesMax'),
      onEndpointFailure: (endpoint) => this.router.endpointFailed(endpoint),
    });
    this.resolveSiblings = options.resolveSiblings;
    const routing = options.routing ?? 'partition-aware';
    if (routing !== 'partition-aware' && routing !== 'any') throw new DynamoError('ARGUMENT_INVALID', 0, `routing must be 'partition-aware' or 'any', got ${String(routing)}`);
    const refreshIntervalMs = positive(options.ringRefreshIntervalMs ?? 10_000, 'ringRefreshIntervalMs');
    this.router = new RingRouter({
      mode: routing,
      fetchRing: (endpoint) => this.fetchRoutingRing(endpoint),
      nowMs: () => Date.now(),
      refreshIntervalMs,
      refreshGapMsMin: Math.min(RING_REFRESH_GAP_MS_MIN, refreshIntervalMs),
      suspectMs: ROUTE_SUSPECT_MS,
    });
  }

  /** The ring version key requests are routed by; undefined before a ring is known or with routing 'any'. */
  get ringVersion(): number | undefined {
    return this.router.ringVersion;
  }

  /**
   * Fetches the ring for routing now (one fetch at a time; a call during a fetch waits for it).
   * Not needed for routing to work: the first key request starts a fetch without waiting for it.
   */
  async refreshRing(): Promise<void> {
    await this.router.refresh();
  }

  /** The normalised endpoint URLs, in failover order. */
  get endpoints(): string[] {
    return this.transport.endpointUrls;
  }

  async get(bucket: string, key: string, options: GetOptions = {}): Promise<GetResult> {
    const result = await this.read(bucket, key, options);
    const resolver = options.resolveSiblings === false ? undefined : (options.resolveSiblings ?? this.resolveSiblings);
    if (resolver === undefined || result.values.length < 2) return result;
    const resolved = normaliseResolved(await resolver(result.values, { bucket, key }), commonContentType(result.values));
    const put = await this.put(bucket, key, resolved.value, { context: result.context, contentType: resolved.contentType, returnBody: true });
    // A write racing this one can leave siblings again; they are returned rather than resolved
    // in a loop, so a busy key cannot keep this call running.
    return put.body ?? { found: true, values: [{ ...resolved, lastModified: new Date() }], context: put.context };
  }

  async put(bucket: string, key: string, value: Buffer | string, options: PutOptions = {}): Promise<PutResult> {
    const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (!Buffer.isBuffer(body)) throw new DynamoError('ARGUMENT_INVALID', 0, 'value must be a Buffer or a string');
    const headers: Record<string, string> = { 'content-type': options.contentType ?? (typeof value === 'string' ? DEFAULT_TEXT_TYPE : DEFAULT_BINARY_TYPE) };
    if (options.context !== undefined) headers[CONTEXT_HEADER] = options.context;
    const query = quorumQuery(options, ['w', 'dw', 'pw']);
    if (options.returnBody === true) query.set('returnbody', 'true');
    const response = await this.sendKeyed(bucket, key, { method: 'PUT', path: keyPath(bucket, key, query), headers, body });
    if (response.status === 200 || response.status === 300) {
      const state = decodeReadResponse(response);
      if (state.context === undefined) throw protocolError(response.endpoint, 'the put answer has no context');
      return { context: state.context, body: state };
    }
    if (response.status < 200 || response.status >= 300) throw failure(response);
    const context = response.headers[CONTEXT_HEADER];
    if (context === undefined) throw protocolError(response.endpoint, 'the put answer has no X-Dynamo-Context');
    return { context };
  }

  async delete(bucket: string, key: string, options: DeleteOptions = {}): Promise<void> {
    let context = options.context;
    if (context === undefined && options.fetchContext !== false) context = (await this.read(bucket, key, {})).context;
    const headers: Record<string, string> = {};
    if (context !== undefined) headers[CONTEXT_HEADER] = context;
    const response = await this.sendKeyed(bucket, key, { method: 'DELETE', path: keyPath(bucket, key, quorumQuery(options, ['w', 'dw', 'pw'])), headers });
    // Deleting an absent key is not a failure: the end state is what the caller asked for.
    if ((response.status >= 200 && response.status < 300) || response.status === 404) return;
    throw failure(response);
  }

  /**
   * Read-modify-write: reads the key, gives its values (none, one or siblings) to `resolve`, and
   * writes the answer back with the read's context, so the write replaces exactly what was read.
   */
  async update(bucket: string, key: string, resolve: SiblingResolver, options: UpdateOptions = {}): Promise<PutResult> {
    const current = await this.read(bucket, key, options);
    const resolved = normaliseResolved(await resolve(current.values, { bucket, key }), options.contentType ?? commonContentType(current.values));
    return this.put(bucket, key, resolved.value, { context: current.context, contentType: resolved.contentType, w: options.w, dw: options.dw, pw: options.pw });
  }

  async status(options: { endpoint?: string } = {}): Promise<admin.NodeStatus> {
    const response = await this.adminCall({ method: 'GET', path: admin.STATUS_PATH }, options.endpoint);
    return admin.decodeStatus(response.body.toString('utf8'), response.endpoint);
  }

  async ring(options: { endpoint?: string } = {}): Promise<admin.RingInfo> {
    const response = await this.adminCall({ method: 'GET', path: admin.RING_PATH }, options.endpoint);
    return admin.decodeRing(response.body.toString('utf8'), response.endpoint);
  }

  async members(options: { endpoint?: string } = {}): Promise<admin.MemberInfo[]> {
    const response = await this.adminCall({ method: 'GET', path: admin.MEMBERS_PATH }, options.endpoint);
    return admin.decodeMembers(response.body.toString('utf8'), response.endpoint);
  }

  /** GET /v1/handoff: the pending change's transfers with this node's progress (raw JSON objects). */
  async handoff(options: { endpoint?: string } = {}): Promise<Record<string, unknown>[]> {
    const response = await this.adminCall({ method: 'GET', path: '/v1/handoff' }, options.endpoint);
    const body = JSON.parse(response.body.toString('utf8')) as { transfers?: unknown };
    return Array.isArray(body.transfers) ? (body.transfers as Record<string, unknown>[]) : [];
  }

  /** POST /v1/admin/abort at `endpoint`: the claimant drops the pending change (the answer's JSON). */
  async abort(endpoint: string): Promise<Record<string, unknown>> {
    const response = await this.adminCall({ method: 'POST', path: '/v1/admin/abort' }, endpoint);
    const body = JSON.parse(response.body.toString('utf8')) as unknown;
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  }

  /** Tells the node at `nodeEndpoint` to join the cluster of `seed` (the seed's peer address). */
  async join(nodeEndpoint: string, seed: string): Promise<void> {
    await this.adminCall(admin.joinRequest(seed), nodeEndpoint);
  }

  /** Tells the node at `nodeEndpoint` to leave the ring (or to remove member `nodeId`). */
  async leave(nodeEndpoint: string, options: { nodeId?: string } = {}): Promise<void> {
    await this.adminCall(admin.leaveRequest(options.nodeId), nodeEndpoint);
  }

  /** True when the node at `endpoint` answers /readyz with 200; one attempt, never throws. */
  async ready(endpoint: string): Promise<boolean> {
    try {
      const response = await this.transport.send({ method: 'GET', path: admin.READY_PATH }, { only: endpoint, retries: 0 });
      return response.status === 200;
    } catch {
      return false;
    }
  }

  /** Closes the keep-alive connections. The client must not be used afterwards. */
  async close(): Promise<void> {
    await this.transport.close();
  }

  private async read(bucket: string, key: string, options: ReadOptions): Promise<GetResult> {
    const query = quorumQuery(options, ['r', 'pr']);
    if (options.consistent === true) query.set('consistent', 'true');
    const response = await this.sendKeyed(bucket, key, { method: 'GET', path: keyPath(bucket, key, query) });
    return decodeReadResponse(response);
  }

  /** A key request: to the key's replicas first (when routing knows them), then the failover order. */
  private async sendKeyed(bucket: string, key: string, request: HttpRequest): Promise<HttpResponse> {
    const preferred = this.router.endpointsFor(bucket, key);
    const response = await this.transport.send(request, preferred.length === 0 ? {} : { preferred });
    this.router.observe(response.endpoint, response.headers[RING_VERSION_HEADER]);
    return response;
  }

  /** GET /v1/ring for routing; undefined when the answer is not a ring routing can use. */
  private async fetchRoutingRing(endpoint: string | undefined): Promise<RoutingRing | undefined> {
    const request = { method: 'GET' as const, path: admin.RING_PATH };
    const response = await this.transport.send(request, endpoint === undefined ? {} : { only: endpoint, retries: 0 });
    if (response.status !== 200) return undefined;
    const ring = routingRingOf(admin.decodeRing(response.body.toString('utf8'), response.endpoint));
    if (ring !== undefined) this.transport.forgetEndpointsExcept(new Set(ring.owners.flat()));
    return ring;
  }

  private async adminCall(request: Parameters<Transport['send']>[0], endpoint: string | undefined): Promise<HttpResponse> {
    const response = await this.transport.send(request, endpoint === undefined ? {} : { only: endpoint });
    if (response.status < 200 || response.status >= 300) throw failure(response);
    return response;
  }
}

/** Interprets a GET (or returnbody PUT) answer: 200 one value, 300 siblings, 404 absent. */
function decodeReadResponse(response: HttpResponse): GetResult {
  const headerContext = response.headers[CONTEXT_HEADER];
  if (response.status === 200) {
    const sibling: Sibling = {
      value: response.body,
      contentType: response.headers['content-type'] ?? DEFAULT_BINARY_TYPE,
      lastModified: parseDate(response.headers['last-modified']),
    };
    return { found: true, values: [sibling], context: headerContext };
  }
  if (response.status === 300) {
    const decoded = decodeSiblingsBody(response.body.toString('utf8'), response.endpoint);
    return { found: true, values: decoded.siblings, context: decoded.context };
  }
  if (response.status === 404) {
    // A 404 about the route (NOT_FOUND), not the key (KEY_NOT_FOUND), means a wrong endpoint URL
    // and must not pass for a missing key.
    const code = parseErrorBody(response.body.toString('utf8'))?.code;
    if (code !== undefined && code !== 'KEY_NOT_FOUND') throw failure(response);
    return { found: false, values: [], context: headerContext };
  }
  throw failure(response);
}

function failure(response: HttpResponse): DynamoError {
  return errorFromResponse(response.status, response.body.toString('utf8'), response.endpoint, undefined);
}

function keyPath(bucket: string, key: string, query: URLSearchParams): string {
  if (typeof bucket !== 'string' || bucket.length === 0) throw new DynamoError('ARGUMENT_INVALID', 0, 'bucket must be a non-empty string');
  if (typeof key !== 'string' || key.length === 0) throw new DynamoError('ARGUMENT_INVALID', 0, 'key must be a non-empty string');
  const search = query.toString();
  return `/v1/buckets/${encodeURIComponent(bucket)}/keys/${encodeURIComponent(key)}${search === '' ? '' : `?${search}`}`;
}

function quorumQuery<K extends string>(options: Partial<Record<K, Quorum>>, names: readonly K[]): URLSearchParams {
  const query = new URLSearchParams();
  for (const name of names) {
    const value = options[name];
    if (value === undefined) continue;
    const valid = typeof value === 'number' ? Number.isInteger(value) && value >= 1 : QUORUM_NAMES.has(value);
    if (!valid) throw new DynamoError('ARGUMENT_INVALID', 0, `${name} must be a positive integer or one/quorum/all, got ${String(value)}`);
    query.set(name, String(value));
  }
  return query;
}

/** The content type every sibling shares, so a resolver returning bare bytes keeps it. */
function commonContentType(values: readonly Sibling[]): string | undefined {
  const first = values[0]?.contentType;
  return first !== undefined && values.every((v) => v.contentType === first) ? first : undefined;
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new DynamoError('ARGUMENT_INVALID', 0, `${name} must be a positive number`);
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0) throw new DynamoError('ARGUMENT_INVALID', 0, `${name} must be a non-negative integer`);
  return value;
}
