/**
 * Calls other nodes' peer APIs over HTTP with one keep-alive undici Pool per peer. Every call has
 * a timeout, and the number of calls in flight to one peer is bounded, so a slow peer cannot
 * absorb unbounded memory: past the bound a call fails at once with PEER_BUSY.
 */
import { Pool } from 'undici';
import {
  BATCHED_METHODS,
  BATCH_BYTES_MAX,
  BATCH_CALLS_MAX,
  PEER_CONTENT_TYPE,
  decodeBatchResponse,
  decodePeerError,
  decodeResponse,
  packMessage,
  unpackMessage,
  type PeerMethod,
  type PeerRequest,
  type PeerResponse,
} from './peerMessages';

/** How a caller learns why a peer call failed; `code` mirrors the error catalogue. */
export class PeerCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** True when the peer never answered (connection refused, reset, timeout). */
    readonly unreachable: boolean,
  ) {
    super(message);
    this.name = 'PeerCallError';
  }
}

/** The seam the simulator replaces with an in-memory network. */
export interface PeerTransport {
  call<M extends PeerMethod>(peerUrl: string, method: M, request: PeerRequest<M>, timeoutMs: number): Promise<PeerResponse<M>>;
  close(): Promise<void>;
}

export interface PeerClientOptions {
  readonly connectionsPerPeer: number;
  readonly inFlightPerPeerMax: number;
  /** Sent as a bearer token when the peer port requires a shared secret. */
  readonly peerSecret?: string;
  /** Pools for peers not called for this long are closed; bounds the pool map. */
  readonly poolsMax: number;
  /**
   * Call every peer over HTTPS (the cluster runs peer TLS), whatever scheme its URL names, so a
   * seed given as "host:port" works too. `ca`: PEM bundle peer certificates must chain to
   * (default: the system CAs). Host names are verified as usual.
   */
  readonly tls?: { readonly ca?: Buffer };
}

export const DEFAULT_PEER_CLIENT_OPTIONS: PeerClientOptions = { connectionsPerPeer: 16, inFlightPerPeerMax: 2048, poolsMax: 1024 };
/** Framing of one batched call beyond its object bytes (method, partition, bucket, key, flags). */
const CALL_OVERHEAD_BYTES = 64;

interface PendingCall {
  readonly method: PeerMethod;
  readonly request: unknown;
  /** performance.now() by which the call must have its answer: its timeout counts from the call, queueing included. */
  readonly deadlineMs: number;
  readonly bytes: number;
  readonly resolve: (response: unknown) => void;
  readonly reject: (error: unknown) => void;
}

interface PeerEntry {
  readonly url: string;
  readonly pool: Pool;
  inFlight: number;
  /** Batchable calls made in this event-loop turn, sent together when the turn ends. */
  pending: PendingCall[];
  pendingBytes: number;
}

/**
 * Replica reads and writes are many and small; one HTTP request per call made the HTTP layers
 * the largest cost of a cluster request. Calls to one peer issued in the same event-loop turn
 * travel as one batch, of at most BATCH_CALLS_MAX calls and about BATCH_BYTES_MAX bytes, and each
 * still gets its own result or error. Under load a turn is long and batches grow by themselves
 * (7-8 calls per batch at 3 nodes under the cluster benchmark); holding calls back for a longer
 * window, or until a batch in flight returns, was measured and gained nothing (see
 * bench/results/cluster-scaling-2026-11-25-routing.md).
 */
export class HttpPeerTransport implements PeerTransport {
  private readonly pools = new Map<string, PeerEntry>();

  constructor(private readonly options: PeerClientOptions = DEFAULT_PEER_CLIENT_OPTIONS) {}

  async call<M extends PeerMethod>(peerUrl: string, method: M, request: PeerRequest<M>, timeoutMs: number): Promise<PeerResponse<M>> {
    const entry = this.poolFor(peerUrl);
    if (entry.inFlight >= this.options.inFlightPerPeerMax) {
      throw new PeerCallError('PEER_BUSY', `too many calls in flight to ${peerUrl}`, false);
    }
    entry.inFlight++;
    try {
      if (!BATCHED_METHODS.includes(method)) {
        const decoded = await this.post(entry, method, request, timeoutMs);
        return decodeResponse[method](decoded) as PeerResponse<M>;
      }
      const response = await new Promise<unknown>((resolve, reject) => {
        this.enqueue(entry, { method, request, deadlineMs: performance.now() + timeoutMs, bytes: estimatedBytes(request), resolve, reject });
      });
      return decodeResponse[method](response) as PeerResponse<M>;
    } finally {
      entry.inFlight--;
    }
  }

  private enqueue(entry: PeerEntry, call: PendingCall): void {
    // A batch stays under the byte bound: what is queued goes first when this call would pass it.
    if (entry.pending.length > 0 && entry.pendingBytes + call.bytes > BATCH_BYTES_MAX) this.send(entry);
    entry.pending.push(call);
    entry.pendingBytes += call.bytes;
    if (entry.pending.length === 1) setImmediate(() => this.send(entry));
    else if (entry.pending.length >= BATCH_CALLS_MAX) this.send(entry);
  }

  /** Sends the pending calls: alone as a plain call, or together as one batch. */
  private send(entry: PeerEntry): void {
    const calls = entry.pending;
    if (calls.length === 0) return;
    entry.pending = [];
    entry.pendingBytes = 0;
    // The batch's one timer ends with the earliest deadline, so no call waits past its own.
    let deadlineMs = Number.POSITIVE_INFINITY;
    for (const call of calls) deadlineMs = Math.min(deadlineMs, call.deadlineMs);
    const timeoutMs = Math.max(1, Math.ceil(deadlineMs - performance.now()));
    if (calls.length === 1) void this.sendOne(entry, calls[0]!, timeoutMs);
    else void this.sendBatch(entry, calls, timeoutMs);
  }

  private async sendOne(entry: PeerEntry, call: PendingCall, timeoutMs: number): Promise<void> {
    try {
      call.resolve(await this.post(entry, call.method, call.request, timeoutMs));
    } catch (error) {
      call.reject(error);
    }
  }

  private async sendBatch(entry: PeerEntry, calls: readonly PendingCall[], timeoutMs: number): Promise<void> {
    let decoded: unknown;
    try {
      decoded = await this.post(entry, 'batch', { calls: calls.map((c) => ({ method: c.method, request: c.request })) }, timeoutMs);
    } catch (error) {
      for (const c of calls) c.reject(error);
      return;
    }
    let results;
    try {
      results = decodeBatchResponse(decoded, calls.length);
    } catch (error) {
      for (const c of calls) c.reject(new PeerCallError('PEER_MESSAGE_INVALID', (error as Error).message, false));
      return;
    }
    results.forEach((result, i) => {
      const c = calls[i]!;
      if (result.ok) c.resolve(result.response);
      else c.reject(new PeerCallError(result.code, result.message, false));
    });
  }

  /** One HTTP POST to /peer/v1/<path>; resolves to the decoded msgpack body of a 200. */
  private async post(entry: PeerEntry, path: string, request: unknown, timeoutMs: number): Promise<unknown> {
    const peerUrl = entry.url;
    const headers: Record<string, string> = { 'content-type': PEER_CONTENT_TYPE };
    if (this.options.peerSecret) headers.authorization = `Bearer ${this.options.peerSecret}`;
    // One timer bounds the whole call, queueing in the pool included; it is cleared on completion
    // (AbortSignal.timeout would fire later anyway and build a DOMException for every call).
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const response = await entry.pool.request({
        method: 'POST',
        path: `/peer/v1/${path}`,
        headers,
        body: packMessage(request),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: abort.signal,
      });
      const body = Buffer.from(await response.body.arrayBuffer());
      const decoded = unpackMessage(body);
      if (response.statusCode !== 200) {
        const error = decodePeerError(decoded);
        throw new PeerCallError(error.code, error.message, false);
      }
      return decoded;
    } catch (error) {
      if (error instanceof PeerCallError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new PeerCallError('PEER_UNREACHABLE', `${path} to ${peerUrl} failed: ${message}`, true);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.close().catch(() => undefined)));
  }

  private poolFor(peerUrl: string): PeerEntry {
    let entry = this.pools.get(peerUrl);
    if (entry === undefined) {
      if (this.pools.size >= this.options.poolsMax) this.evictIdlePool();
      const tls = this.options.tls;
      const origin = tls === undefined ? peerUrl : peerUrl.replace(/^http:/, 'https:');
      const pool = new Pool(origin, {
        connections: this.options.connectionsPerPeer,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        ...(tls?.ca === undefined ? {} : { connect: { ca: tls.ca } }),
      });
      entry = { url: peerUrl, pool, inFlight: 0, pending: [], pendingBytes: 0 };
      this.pools.set(peerUrl, entry);
    }
    return entry;
  }

  private evictIdlePool(): void {
    for (const [url, entry] of this.pools) {
      if (entry.inFlight === 0 && entry.pending.length === 0) {
        this.pools.delete(url);
        void entry.pool.close().catch(() => undefined);
        return;
      }
    }
  }
}

/** What a batched call adds to a batch: its object (a replicate), bucket and key, plus framing. */
function estimatedBytes(request: unknown): number {
  const { object, bucket, key } = request as { object?: unknown; bucket?: unknown; key?: unknown };
  const text = (typeof bucket === 'string' ? bucket.length : 0) + (typeof key === 'string' ? key.length : 0);
  // UTF-16 length times 3 bounds the UTF-8 bytes.
  return CALL_OVERHEAD_BYTES + 3 * text + (object instanceof Uint8Array ? object.byteLength : 0);
}
