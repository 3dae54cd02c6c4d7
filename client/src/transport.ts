/**
 * HTTP transport of the client: one keep-alive undici Pool per endpoint, and failover.
 *
 * Failover rule: each call starts at a rotating endpoint (so load spreads over the cluster) and
 * moves to the next endpoint on a connection error, a timeout or a 503. A call may name endpoints
 * to try first (`preferred`: a key's replicas, see routing.ts); the rotating order follows them.
 * The number of attempts is bounded by 1 + retries. Moving to an endpoint not yet tried in this
 * call is immediate; coming back to one already tried first waits for the largest Retry-After
 * seen (or an exponential back-off when none was sent), capped by retryAfterMsMax, so a cluster
 * that says "overloaded" is not hammered.
 *
 * Any other answer (2xx, 300, 404, 4xx, other 5xx) is final and goes back to the caller as is.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { DynamoError, errorFromResponse } from './errors';

export interface TransportOptions {
  readonly endpoints: readonly string[];
  /** Limit for one attempt, from sending the request to the end of the response body. */
  readonly timeoutMs: number;
  /** Extra attempts after the first one fails with a retryable failure. */
  readonly retries: number;
  readonly token?: string;
  /** PEM CA certificate(s) for https endpoints; default: the system's CAs. */
  readonly ca?: string | Buffer;
  /** The longest wait honoured from a Retry-After header or back-off. */
  readonly retryAfterMsMax: number;
  /** First back-off when an endpoint is retried without a Retry-After; doubles per round. */
  readonly backoffMsBase: number;
  readonly connectionsPerEndpoint: number;
  /** Responses larger than this are refused, so a bad server cannot exhaust memory. */
  readonly responseBytesMax: number;
  /** Told about every attempt that got no answer (connection error, timeout), e.g. to stop routing there. */
  readonly onEndpointFailure?: (endpoint: string) => void;
}

export interface HttpRequest {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Path and query, starting with '/'. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
}

export interface HttpResponse {
  readonly status: number;
  /** Lower-case header names, first value only. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Buffer;
  readonly endpoint: string;
}

export interface SendTarget {
  /** Send only to this endpoint (no failover), e.g. for admin calls aimed at one node. */
  readonly only?: string;
  readonly retries?: number;
  /** Normalised endpoint URLs to try first, in order, before the rotating failover order. */
  readonly preferred?: readonly string[];
}

interface Endpoint {
  readonly url: string;
  readonly basePath: string;
  readonly pool: Pool;
}

/** Checks and normalises an endpoint URL such as http://127.0.0.1:8080 (a path prefix is kept). */
export function normaliseEndpoint(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    throw new DynamoError('ARGUMENT_INVALID', 0, `endpoint "${raw}" is not a URL (expected e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DynamoError('ARGUMENT_INVALID', 0, `endpoint "${raw}" must use http or https`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Parses Retry-After (delay seconds or an HTTP date) into milliseconds from `nowMs`. */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const dateMs = Date.parse(trimmed);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.max(0, dateMs - nowMs);
}

export class Transport {
  private readonly endpoints: Endpoint[] = [];
  private readonly byUrl = new Map<string, Endpoint>();
  private nextStart = 0;

  constructor(private readonly options: TransportOptions) {
    if (options.endpoints.length === 0) throw new DynamoError('ARGUMENT_INVALID', 0, 'at least one endpoint is required');
    for (const raw of options.endpoints) {
      const endpoint = this.endpointFor(normaliseEndpoint(raw));
      if (!this.endpoints.includes(endpoint)) this.endpoints.push(endpoint);
    }
  }

  get endpointUrls(): string[] {
    return this.endpoints.map((e) => e.url);
  }

  /**
   * Sends `request` with failover over all endpoints, or only to `only` when given (admin calls
   * that must reach one particular node), with `retries` overriding the client's. Throws a DynamoError when every attempt failed.
   */
  async send(request: HttpRequest, target: SendTarget = {}): Promise<HttpResponse> {
    const candidates = this.candidates(target);
    const attemptsMax = 1 + Math.max(0, target.retries ?? this.options.retries);
    let lastError: DynamoError | undefined;
    let retryAfterMsSeen = 0;
    for (let attempt = 0; attempt < attemptsMax; attempt++) {
      const endpoint = candidates[attempt % candidates.length]!;
      const round = Math.floor(attempt / candidates.length);
      if (round > 0) await sleep(this.waitMs(round, retryAfterMsSeen));
      const outcome = await this.attempt(endpoint, request);
      if (!(outcome instanceof DynamoError)) {
        if (outcome.status !== 503) return outcome;
        const retryAfterMs = parseRetryAfterMs(outcome.headers['retry-after'], Date.now());
        lastError = errorFromResponse(503, outcome.body.toString('utf8'), endpoint.url, retryAfterMs);
        retryAfterMsSeen = Math.max(retryAfterMsSeen, retryAfterMs ?? 0);
      } else {
        lastError = outcome;
        if (outcome.code === 'UNAVAILABLE' || outcome.code === 'TIMEOUT') this.options.onEndpointFailure?.(endpoint.url);
      }
    }
    throw lastError!.withAttempts(attemptsMax);
  }

  async close(): Promise<void> {
    // byUrl also holds pools made for single-endpoint (admin) calls.
    await Promise.all([...this.byUrl.values()].map((e) => e.pool.close()));
  }

  /** The endpoints of one call in the order they are tried: `only`, or `preferred` then the rotation. */
  private candidates(target: SendTarget): Endpoint[] {
    if (target.only !== undefined) return [this.endpointFor(normaliseEndpoint(target.only))];
    const start = this.rotate();
    const rotated = [...this.endpoints.slice(start), ...this.endpoints.slice(0, start)];
    const preferred = target.preferred ?? [];
    if (preferred.length === 0) return rotated;
    const first = preferred.map((url) => this.endpointFor(url));
    return [...first, ...rotated.filter((endpoint) => !first.includes(endpoint))];
  }

  /**
   * Closes the pools of endpoints that were neither configured nor are in `keep` (members that
   * left the ring), so routing to members cannot grow the pool map without bound.
   */
  forgetEndpointsExcept(keep: ReadonlySet<string>): void {
    for (const [url, endpoint] of this.byUrl) {
      if (keep.has(url) || this.endpoints.includes(endpoint)) continue;
      this.byUrl.delete(url);
      void endpoint.pool.close().catch(() => undefined);
    }
  }

  private rotate(): number {
    const start = this.nextStart;
    this.nextStart = (this.nextStart + 1) % this.endpoints.length;
    return start;
  }

  private waitMs(round: number, retryAfterMsSeen: number): number {
    const backoffMs = this.options.backoffMsBase * 2 ** (round - 1);
    return Math.min(this.options.retryAfterMsMax, retryAfterMsSeen > 0 ? retryAfterMsSeen : backoffMs);
  }

  private endpointFor(url: string): Endpoint {
    const existing = this.byUrl.get(url);
    if (existing !== undefined) return existing;
    const parsed = new URL(url);
    const pool = new Pool(parsed.origin, {
      connections: this.options.connectionsPerEndpoint,
      connectTimeout: this.options.timeoutMs,
      ...(this.options.ca === undefined ? {} : { connect: { ca: this.options.ca } }),
      headersTimeout: this.options.timeoutMs,
      bodyTimeout: this.options.timeoutMs,
    });
    const endpoint: Endpoint = { url, basePath: parsed.pathname.replace(/\/+$/, ''), pool };
    this.byUrl.set(url, endpoint);
    return endpoint;
  }

  /** One attempt; a transport failure comes back as a DynamoError value instead of a throw. */
  private async attempt(endpoint: Endpoint, request: HttpRequest): Promise<HttpResponse | DynamoError> {
    const headers: Record<string, string> = { ...request.headers };
    if (this.options.token !== undefined) headers.authorization = `Bearer ${this.options.token}`;
    try {
      const response = await endpoint.pool.request({
        method: request.method,
        path: `${endpoint.basePath}${request.path}`,
        headers,
        body: request.body ?? null,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      const body = await readBounded(response.body, this.options.responseBytesMax, endpoint.url);
      return { status: response.statusCode, headers: firstValues(response.headers), body, endpoint: endpoint.url };
    } catch (error) {
      if (error instanceof DynamoError) return error;
      return transportError(error, endpoint.url, this.options.timeoutMs);
    }
  }
}

async function readBounded(body: AsyncIterable<Buffer>, bytesMax: number, endpoint: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    bytes += chunk.length;
    if (bytes > bytesMax) throw new DynamoError('PROTOCOL_ERROR', 0, `response from ${endpoint} exceeds ${bytesMax} bytes`, { endpoint });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, bytes);
}

function firstValues(headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = Array.isArray(value) ? value[0] : value;
  return out;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function transportError(error: unknown, endpoint: string, timeoutMs: number): DynamoError {
  const name = error instanceof Error ? error.name : '';
  const code = typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : '';
  if (name === 'TimeoutError' || name === 'AbortError' || TIMEOUT_CODES.has(code)) {
    return new DynamoError('TIMEOUT', 0, `${endpoint} did not answer within ${timeoutMs} ms`, { endpoint, cause: error });
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new DynamoError('UNAVAILABLE', 0, `cannot reach ${endpoint}: ${code !== '' ? `${code} ` : ''}${reason}`, { endpoint, cause: error });
}
