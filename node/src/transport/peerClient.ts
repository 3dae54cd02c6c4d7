/**
 * Calls other nodes' peer APIs over HTTP with one keep-alive undici Pool per peer. Every call has
 * a timeout, and the number of calls in flight to one peer is bounded, so a slow peer cannot
 * absorb unbounded memory: past the bound a call fails at once with PEER_BUSY.
 */
import { Pool } from 'undici';
import {
  PEER_CONTENT_TYPE,
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
}

export const DEFAULT_PEER_CLIENT_OPTIONS: PeerClientOptions = { connectionsPerPeer: 16, inFlightPerPeerMax: 2048, poolsMax: 1024 };

export class HttpPeerTransport implements PeerTransport {
  private readonly pools = new Map<string, { pool: Pool; inFlight: number }>();

  constructor(private readonly options: PeerClientOptions = DEFAULT_PEER_CLIENT_OPTIONS) {}

  async call<M extends PeerMethod>(peerUrl: string, method: M, request: PeerRequest<M>, timeoutMs: number): Promise<PeerResponse<M>> {
    const entry = this.poolFor(peerUrl);
    if (entry.inFlight >= this.options.inFlightPerPeerMax) {
      throw new PeerCallError('PEER_BUSY', `too many calls in flight to ${peerUrl}`, false);
    }
    entry.inFlight++;
    const headers: Record<string, string> = { 'content-type': PEER_CONTENT_TYPE };
    if (this.options.peerSecret) headers.authorization = `Bearer ${this.options.peerSecret}`;
    // One timer bounds the whole call, queueing in the pool included; it is cleared on completion
    // (AbortSignal.timeout would fire later anyway and build a DOMException for every call).
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const response = await entry.pool.request({
        method: 'POST',
        path: `/peer/v1/${method}`,
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
      return decodeResponse[method](decoded) as PeerResponse<M>;
    } catch (error) {
      if (error instanceof PeerCallError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new PeerCallError('PEER_UNREACHABLE', `${method} to ${peerUrl} failed: ${message}`, true);
    } finally {
      clearTimeout(timer);
      entry.inFlight--;
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.close().catch(() => undefined)));
  }

  private poolFor(peerUrl: string): { pool: Pool; inFlight: number } {
    let entry = this.pools.get(peerUrl);
    if (entry === undefined) {
      if (this.pools.size >= this.options.poolsMax) this.evictIdlePool();
      entry = { pool: new Pool(peerUrl, { connections: this.options.connectionsPerPeer, pipelining: 1, keepAliveTimeout: 30_000 }), inFlight: 0 };
      this.pools.set(peerUrl, entry);
    }
    return entry;
  }

  private evictIdlePool(): void {
    for (const [url, entry] of this.pools) {
      if (entry.inFlight === 0) {
        this.pools.delete(url);
        void entry.pool.close().catch(() => undefined);
        return;
      }
    }
  }
}
