/**
 * An in-memory network of peer handlers, for tests and the simulator. Messages go through the
 * same msgpack encoding and strict decoders as on the wire, so a value that would not survive
 * HTTP does not survive here either. Links can be cut per node, which looks to callers exactly
 * like an unreachable peer.
 */
import { PeerCallError, type PeerTransport } from './peerClient';
import { PeerDecodeError, decodeRequest, decodeResponse, packMessage, unpackMessage, type PeerMethod, type PeerRequest, type PeerResponse } from './peerMessages';
import type { PeerHandlers } from './peerServer';

/** Calls and encoded bytes of one peer method, as they would cross the wire (msgpack bodies). */
export interface MethodTraffic {
  calls: number;
  requestBytes: number;
  responseBytes: number;
}

export class MemoryNetwork {
  private readonly nodes = new Map<string, PeerHandlers>();
  private readonly down = new Set<string>();
  /** Traffic per peer method since the last reset, for the cost-of-scale measurements. */
  readonly traffic = new Map<string, MethodTraffic>();

  resetTraffic(): void {
    this.traffic.clear();
  }

  private count(method: string): MethodTraffic {
    let t = this.traffic.get(method);
    if (t === undefined) {
      t = { calls: 0, requestBytes: 0, responseBytes: 0 };
      this.traffic.set(method, t);
    }
    return t;
  }

  register(peerUrl: string, handlers: PeerHandlers): void {
    this.nodes.set(peerUrl, handlers);
  }

  /** Makes a node unreachable in both directions (a crash or a network partition). */
  isolate(peerUrl: string): void {
    this.down.add(peerUrl);
  }

  heal(peerUrl?: string): void {
    if (peerUrl === undefined) this.down.clear();
    else this.down.delete(peerUrl);
  }

  transportFor(fromPeerUrl: string): PeerTransport {
    return {
      call: async <M extends PeerMethod>(peerUrl: string, method: M, request: PeerRequest<M>): Promise<PeerResponse<M>> => {
        const handlers = this.nodes.get(peerUrl);
        if (handlers === undefined || this.down.has(peerUrl) || this.down.has(fromPeerUrl)) {
          throw new PeerCallError('PEER_UNREACHABLE', `${peerUrl} is unreachable from ${fromPeerUrl}`, true);
        }
        const requestBody = packMessage(request);
        const traffic = this.count(method);
        traffic.calls++;
        traffic.requestBytes += requestBody.length;
        const decoded = decodeRequest[method](unpackMessage(requestBody));
        let response: unknown;
        try {
          response = await (handlers[method] as (r: unknown) => Promise<unknown>)(decoded);
        } catch (error) {
          if (error instanceof PeerDecodeError) throw new PeerCallError('PEER_MESSAGE_INVALID', error.message, false);
          const code = (error as { code?: unknown }).code;
          throw new PeerCallError(typeof code === 'string' ? code : 'INTERNAL', (error as Error).message, false);
        }
        if (this.down.has(peerUrl) || this.down.has(fromPeerUrl)) throw new PeerCallError('PEER_UNREACHABLE', `${peerUrl} went away`, true);
        const responseBody = packMessage(response);
        traffic.responseBytes += responseBody.length;
        return decodeResponse[method](unpackMessage(responseBody)) as PeerResponse<M>;
      },
      close: async () => undefined,
    };
  }
}
