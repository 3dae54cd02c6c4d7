/**
 * The simulated network between the nodes of one simulation: every request and every response
 * is a message that takes a seeded random delay on the virtual clock, and may be dropped or
 * duplicated. Reordering follows from the random delays. Symmetric partitions cut the links
 * between two sets of nodes. Messages go through the same msgpack encoding and strict decoders
 * as on the wire.
 *
 * How failures look to a caller, as over real TCP:
 * - a dropped request or response, or a cut link: the call fails after its timeoutMs of virtual
 *   time with an unreachable PeerCallError (the timeout is a runtime timer, so time matters);
 * - a crashed process on a live host: the connection is refused after one network delay;
 * - a handler error: a non-unreachable PeerCallError with the handler's code.
 *
 * Each process incarnation gets its own transport. When a process crashes, its transport dies
 * with it: its new calls fail at once, and answers addressed to it are lost, so code of a dead
 * incarnation that is still on the promise queue can never reach the living cluster.
 */
import { PeerCallError, type PeerTransport } from '../../node/src/transport/peerClient';
import { PeerDecodeError, decodePeerError, decodeRequest, decodeResponse, packMessage, unpackMessage, type PeerMethod, type PeerRequest, type PeerResponse } from '../../node/src/transport/peerMessages';
import type { PeerHandlers } from '../../node/src/transport/peerServer';
import type { Runtime } from '../../node/src/cluster/runtime';
import type { Prng } from './prng';

export interface NetworkFaults {
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  /** A message is late (delayMsMin..lateDelayMsMax) with this probability: past timeouts, reordered. */
  readonly lateProbability: number;
  readonly lateDelayMsMax: number;
  readonly dropProbability: number;
  readonly duplicateProbability: number;
}

export const CALM_NETWORK: NetworkFaults = { delayMsMin: 1, delayMsMax: 20, lateProbability: 0, lateDelayMsMax: 20, dropProbability: 0, duplicateProbability: 0 };

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  timedOut: number;
  refused: number;
}

/** Receives one line per delivered message, for the run's trace hash. */
export type TraceSink = (line: string, body: Uint8Array) => void;

interface Endpoint {
  readonly nodeId: string;
  /** Bumped at every crash; a transport is valid only for the incarnation it was made for. */
  incarnation: number;
  handlers: PeerHandlers | undefined;
}

type Handler = (request: unknown) => Promise<unknown>;

export class SimNetwork {
  faults: NetworkFaults;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, timedOut: 0, refused: 0 };
  private readonly endpoints = new Map<string, Endpoint>();
  /** Cut links as "a|b" with a < b (peer URLs); partitions are symmetric. */
  private readonly cutLinks = new Set<string>();

  constructor(
    private readonly runtime: Runtime,
    private readonly prng: Prng,
    faults: NetworkFaults,
    private readonly trace: TraceSink,
  ) {
    this.faults = faults;
  }

  /** Adds a host; nothing listens on it until a process registers. */
  addHost(peerUrl: string, nodeId: string): void {
    if (this.endpoints.has(peerUrl)) throw new Error(`${peerUrl} exists already`);
    this.endpoints.set(peerUrl, { nodeId, incarnation: 0, handlers: undefined });
  }

  /** Starts a process at `peerUrl` (first start or restart after a crash). */
  register(peerUrl: string, handlers: PeerHandlers): void {
    const endpoint = this.endpointOf(peerUrl);
    if (endpoint.handlers !== undefined) throw new Error(`${peerUrl} is already running`);
    endpoint.handlers = handlers;
  }

  /** The process at `peerUrl` dies: it answers nothing, and its in-flight calls are lost. */
  crash(peerUrl: string): void {
    const endpoint = this.endpointOf(peerUrl);
    endpoint.incarnation++;
    endpoint.handlers = undefined;
  }

  isRunning(peerUrl: string): boolean {
    return this.endpoints.get(peerUrl)?.handlers !== undefined;
  }

  /** Cuts every link between a node of `side` and a node of `rest`, both ways. */
  partition(side: readonly string[], rest: readonly string[]): void {
    for (const a of side) for (const b of rest) this.cutLinks.add(linkKey(a, b));
  }

  healPartitions(): void {
    this.cutLinks.clear();
  }

  partitioned(): boolean {
    return this.cutLinks.size > 0;
  }

  /** The transport of the process now running at `fromPeerUrl`; it dies with that process. */
  transportFor(fromPeerUrl: string): PeerTransport {
    const incarnation = this.endpointOf(fromPeerUrl).incarnation;
    return {
      call: <M extends PeerMethod>(peerUrl: string, method: M, request: PeerRequest<M>, timeoutMs: number) =>
        this.call(fromPeerUrl, incarnation, peerUrl, method, request, timeoutMs) as Promise<PeerResponse<M>>,
      close: async () => undefined,
    };
  }

  private call(from: string, fromIncarnation: number, to: string, method: PeerMethod, request: unknown, timeoutMs: number): Promise<unknown> {
    if (!this.alive(from, fromIncarnation)) {
      return Promise.reject(new PeerCallError('PEER_UNREACHABLE', `${from} is not running`, true));
    }
    // Serialised at send time: later mutation of the caller's objects cannot change the message.
    const body = packMessage(request);
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        cancelTimeout();
        outcome();
      };
      const cancelTimeout = this.runtime.schedule(() => {
        this.stats.timedOut++;
        finish(() => reject(new PeerCallError('PEER_TIMEOUT', `${method} to ${to} timed out after ${timeoutMs} ms`, true)));
      }, timeoutMs);
      const onAnswer = (answer: Answer) => finish(() => (answer.ok ? resolve(answer.value) : reject(answer.error)));
      this.send(from, to, `${method} request`, body, () => this.receive(from, fromIncarnation, to, method, body, onAnswer));
    });
  }

  /** The request reached `to`: run its handler and send the answer back. */
  private receive(from: string, fromIncarnation: number, to: string, method: PeerMethod, body: Uint8Array, onAnswer: (answer: Answer) => void): void {
    const endpoint = this.endpointOf(to);
    const replyBack = (label: string, reply: Uint8Array, toAnswer: (bytes: Uint8Array) => Answer) =>
      this.send(to, from, label, reply, () => {
        if (this.alive(from, fromIncarnation)) onAnswer(toAnswer(reply));
      });
    if (endpoint.handlers === undefined) {
      // Nothing listens on the port: the host answers at once with a refusal.
      this.stats.refused++;
      replyBack(`${method} refused`, new Uint8Array(0), () => ({ ok: false, error: new PeerCallError('PEER_UNREACHABLE', `${to} refused the connection`, true) }));
      return;
    }
    const incarnation = endpoint.incarnation;
    const handler = endpoint.handlers[method] as Handler;
    let decoded: unknown;
    try {
      decoded = decodeRequest[method](unpackMessage(body));
    } catch (error) {
      replyBack(`${method} error`, packMessage(errorBody(error)), decodeErrorAnswer);
      return;
    }
    handler(decoded).then(
      (response) => {
        // A process that crashed while handling the request sends nothing.
        if (!this.alive(to, incarnation)) return;
        replyBack(`${method} response`, packMessage(response), (bytes) => decodeAnswer(method, bytes));
      },
      (error: unknown) => {
        if (!this.alive(to, incarnation)) return;
        replyBack(`${method} error`, packMessage(errorBody(error)), decodeErrorAnswer);
      },
    );
  }

  /**
   * Puts one message on the wire: it may be dropped, delayed, duplicated; a cut link or a dead
   * sender loses it. `deliver` runs on the virtual clock when (each copy of) it arrives.
   */
  private send(from: string, to: string, label: string, body: Uint8Array, deliver: () => void): void {
    this.stats.sent++;
    if (this.cut(from, to) || this.prng.chance(this.faults.dropProbability)) {
      this.stats.dropped++;
      return;
    }
    const copies = this.prng.chance(this.faults.duplicateProbability) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let copy = 0; copy < copies; copy++) {
      this.runtime.schedule(() => {
        // A partition that started while the message was in flight loses it too.
        if (this.cut(from, to)) {
          this.stats.dropped++;
          return;
        }
        this.stats.delivered++;
        this.trace(`${this.runtime.nowMs()} ${this.nodeOf(from)}>${this.nodeOf(to)} ${label}`, body);
        deliver();
      }, this.delayMs());
    }
  }

  private delayMs(): number {
    const f = this.faults;
    const max = this.prng.chance(f.lateProbability) ? f.lateDelayMsMax : f.delayMsMax;
    return this.prng.int(f.delayMsMin, Math.max(f.delayMsMin, max));
  }

  private cut(a: string, b: string): boolean {
    return a !== b && this.cutLinks.has(linkKey(a, b));
  }

  private alive(peerUrl: string, incarnation: number): boolean {
    const endpoint = this.endpoints.get(peerUrl);
    return endpoint !== undefined && endpoint.incarnation === incarnation && endpoint.handlers !== undefined;
  }

  private nodeOf(peerUrl: string): string {
    return this.endpoints.get(peerUrl)?.nodeId ?? peerUrl;
  }

  private endpointOf(peerUrl: string): Endpoint {
    const endpoint = this.endpoints.get(peerUrl);
    if (endpoint === undefined) throw new Error(`no node at ${peerUrl}`);
    return endpoint;
  }
}

type Answer = { ok: true; value: unknown } | { ok: false; error: PeerCallError };

function linkKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** The error body a peer server sends: the handler's code, or INTERNAL. */
function errorBody(error: unknown): { code: string; message: string } {
  if (error instanceof PeerDecodeError) return { code: 'PEER_MESSAGE_INVALID', message: error.message };
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  // The wire format bounds messages; a real server truncates long ones the same way.
  return { code: typeof code === 'string' ? code.slice(0, 64) : 'INTERNAL', message: message.slice(0, 1000) };
}

function decodeErrorAnswer(bytes: Uint8Array): Answer {
  const body = decodePeerError(unpackMessage(bytes));
  return { ok: false, error: new PeerCallError(body.code, body.message, false) };
}

function decodeAnswer(method: PeerMethod, bytes: Uint8Array): Answer {
  try {
    return { ok: true, value: decodeResponse[method](unpackMessage(bytes)) };
  } catch (error) {
    return { ok: false, error: new PeerCallError('PEER_MESSAGE_INVALID', (error as Error).message, false) };
  }
}
