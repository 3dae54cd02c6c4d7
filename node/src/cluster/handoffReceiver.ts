/**
 * The receiving side of handoff: applies the batches an old owner streams, keeps each transfer's
 * cursor, and asks senders to wait while this node is busy.
 *
 * Applying: an object for a key this node holds no copy of is written as received
 * (ObjectStore.insertMissing: one multi-get and one storage batch per chunk, no decode-merge-
 * encode round trip); a key with a copy, or one a client write holds the lock of right now, is
 * merged through the coordinator's applyReplica like any replicated write. One batch is applied at
 * a time, in chunks of `chunkKeys` keys with a turn of the event loop between them, so requests of
 * clients and coordinators (the extra copies of writes made during the change land here) wait for
 * one chunk at most, not for whole batches.
 *
 * Cursor: a batch's cursor is written after its objects, in a later write, so the stored cursor
 * never claims objects that were not applied, even after a crash (RocksDB recovers a prefix of
 * its log). A batch that names the cursor it continues from (`after`) may arrive before the one
 * it follows (a pipelining sender has two in flight, on two connections): the cursor advances
 * only over an unbroken chain of applied batches. Those cursor writes are not synced one by one:
 * the sender's closing empty batch checks that the chain reaches its last cursor and syncs it
 * before the sender reports the transfer done.
 *
 * Load: the delay of each turn between chunks (how long other work held the event loop) is
 * smoothed; when it is above `lagMsHigh`, or batches queue for the apply slot, the answer carries
 * retryAfterMs and the sender waits that long before its next batch.
 */
import type { ConflictMode } from '../core/version';
import { compareBytes, equalBytes } from '../storage/bytes';
import type { StorageEngine } from '../storage/engine';
import { OverloadedError } from '../storage/keyLocks';
import { metaKey } from '../storage/keys';
import type { ObjectStore, ReceivedObject } from '../storage/objectStore';
import { HANDOFF_RETRY_AFTER_MS_MAX, type HandoffBatchRequest, type HandoffStatusResponse } from '../transport/handoffMessages';
import type { Coordinator } from './coordinator';
import { MembershipError } from './membership';
import type { Runtime } from './runtime';

export interface HandoffReceiverOptions {
  /** Writes objects without a local copy as received, a chunk at a time; absent: every object goes through applyReplica. */
  readonly store?: ObjectStore;
  /** Keys applied in one event-loop turn. */
  readonly chunkKeys: number;
  /** Batches that may wait for the apply slot; one more is refused with OverloadedError (the sender retries). */
  readonly queuedBatchesMax: number;
  /** Smoothed event-loop delay above which senders are asked to wait. */
  readonly lagMsHigh: number;
  /** The longest wait asked of a sender. */
  readonly retryAfterMsMax: number;
}

export const DEFAULT_RECEIVER_OPTIONS: Omit<HandoffReceiverOptions, 'store'> = {
  chunkKeys: 256,
  queuedBatchesMax: 64,
  lagMsHigh: 10,
  retryAfterMsMax: 1000,
};

/** Batches applied beyond a gap that one transfer remembers; a pipelining sender has two in flight. */
const AHEAD_BATCHES_MAX = 16;
/** Weight of a new sample in the smoothed turn delay and apply time. */
const SMOOTHING = 0.3;
/** A busy receiver asks for this many times its smoothed turn delay, so the loop can catch up. */
const LAG_BACKOFF_FACTOR = 10;
/** A zero-delay timer of the real runtime fires after about this long even on an idle loop. */
const TIMER_FLOOR_MS = 1;
/** A turn delay measured longer ago than this no longer says anything about the load now. */
const LAG_STALE_MS = 1000;

export const cursorKey = (transferId: string): Uint8Array => metaKey(`handoff/${transferId}`);

interface Chain {
  /** The end of the unbroken chain of applied batches, as stored (null: nothing applied yet). */
  cursor: Uint8Array | null;
  /** Applied batches beyond a gap, by the hex of the cursor they continue from. */
  readonly ahead: Map<string, { readonly after: Uint8Array; readonly cursor: Uint8Array }>;
}

export class HandoffReceiver {
  private readonly chains = new Map<string, Chain>();
  private busy = false;
  private readonly waiting: (() => void)[] = [];
  private lagMs = 0;
  private lagSampledAtMs = 0;
  private applyMs = 0;

  constructor(
    private readonly engine: StorageEngine,
    private readonly coordinator: Coordinator,
    private readonly runtime: Runtime,
    private readonly conflictModeOf: (bucket: string) => ConflictMode,
    private readonly options: HandoffReceiverOptions,
  ) {
    if (!(options.chunkKeys >= 1 && options.queuedBatchesMax >= 0 && options.retryAfterMsMax <= HANDOFF_RETRY_AFTER_MS_MAX)) {
      throw new RangeError('handoff receiver: chunkKeys >= 1, queuedBatchesMax >= 0, retryAfterMsMax within the message limit');
    }
  }

  async status(transferId: string): Promise<HandoffStatusResponse> {
    const cursor = await this.engine.get(cursorKey(transferId));
    return { cursor: cursor ?? null };
  }

  /** Applies one batch (already checked against the ring and its checksum) and advances the cursor. */
  async receive(request: HandoffBatchRequest): Promise<HandoffStatusResponse> {
    await this.enterSlot();
    const startMs = this.runtime.nowMs();
    if (startMs - this.lagSampledAtMs > LAG_STALE_MS) this.lagMs = 0;
    try {
      const cursor = request.after === undefined ? await this.receiveUnchained(request) : await this.receiveChained(request, request.after);
      this.applyMs = this.applyMs * (1 - SMOOTHING) + (this.runtime.nowMs() - startMs) * SMOOTHING;
      const retryAfterMs = this.retryAfterMs();
      return retryAfterMs > 0 ? { cursor, retryAfterMs } : { cursor };
    } finally {
      this.leaveSlot();
    }
  }

  /** Forgets the chains of transfers no longer pending (their cursors are deleted by the caller). */
  forgetExcept(pendingIds: ReadonlySet<string>): void {
    for (const id of [...this.chains.keys()]) if (!pendingIds.has(id)) this.chains.delete(id);
  }

  /** Smoothed event-loop delay between chunks, in ms (for tests and metrics). */
  turnDelayMs(): number {
    return this.lagMs;
  }

  /** An older sender: the cursor is taken as is once the objects are applied, and synced, as before pipelining. */
  private async receiveUnchained(request: HandoffBatchRequest): Promise<Uint8Array> {
    await this.apply(request);
    await this.engine.put(cursorKey(request.transferId), request.cursor, { sync: true });
    const chain = this.chains.get(request.transferId);
    if (chain !== undefined) chain.cursor = request.cursor;
    return request.cursor;
  }

  private async receiveChained(request: HandoffBatchRequest, after: Uint8Array | null): Promise<Uint8Array | null> {
    if (after !== null && compareBytes(request.cursor, after) < 0) throw new MembershipError('PARAMETER_INVALID', `handoff batch of ${request.transferId} ends before it starts`);
    const chain = await this.chainOf(request.transferId);
    const connects = reaches(chain.cursor, after);
    if (request.entries.length === 0 && after !== null && equalBytes(after, request.cursor)) {
      // The closing batch: every batch up to `after` must be applied, and the chain is made durable.
      // (A batch whose entries were all skipped as corrupt is empty too, but moves the cursor on.)
      if (!connects) throw new MembershipError('MEMBERSHIP_CONFLICT', `handoff ${request.transferId}: batches before the closing cursor are missing`);
      if (chain.cursor !== null) await this.engine.put(cursorKey(request.transferId), chain.cursor, { sync: true });
      return chain.cursor;
    }
    if (!connects && after !== null) {
      if (chain.ahead.size >= AHEAD_BATCHES_MAX) throw new OverloadedError(AHEAD_BATCHES_MAX, `handoff batches of ${request.transferId} wait beyond a gap`);
      await this.apply(request);
      chain.ahead.set(hexOf(after), { after, cursor: request.cursor });
      return chain.cursor;
    }
    await this.apply(request);
    const before = chain.cursor;
    chain.cursor = later(chain.cursor, request.cursor);
    // Batches that arrived early join the chain once it reaches where they start; bounded by `ahead`.
    for (let joined = true; joined; ) {
      joined = false;
      for (const [id, batch] of chain.ahead) {
        if (!reaches(chain.cursor, batch.after)) continue;
        chain.ahead.delete(id);
        chain.cursor = later(chain.cursor, batch.cursor);
        joined = true;
      }
    }
    if (chain.cursor !== null && chain.cursor !== before) await this.engine.put(cursorKey(request.transferId), chain.cursor);
    return chain.cursor;
  }

  private async chainOf(transferId: string): Promise<Chain> {
    let chain = this.chains.get(transferId);
    if (chain === undefined) {
      // Loaded inside the apply slot, so two batches never load (and then overwrite) it at once.
      chain = { cursor: (await this.engine.get(cursorKey(transferId))) ?? null, ahead: new Map() };
      this.chains.set(transferId, chain);
    }
    return chain;
  }

  /** The entries, chunk by chunk: the ones without a copy written as received, the rest merged. */
  private async apply(request: HandoffBatchRequest): Promise<void> {
    const conflictModeOf = this.conflictModeOf;
    const store = this.options.store;
    for (let start = 0; start < request.entries.length; start += this.options.chunkKeys) {
      if (start > 0) await this.yieldTurn();
      const chunk = request.entries.slice(start, start + this.options.chunkKeys);
      const received: ReceivedObject[] = chunk.map((e) => ({ bucket: e.bucket, key: e.key, encoded: e.object }));
      const toMerge = store === undefined ? received : await store.insertMissing(request.partition, received);
      // Distinct keys: their merges land in the same turns and storage commits them as a group.
      await Promise.all(toMerge.map((e) => this.coordinator.applyReplica(request.partition, e.bucket, e.key, e.encoded, false, undefined, conflictModeOf(e.bucket))));
    }
  }

  /** Lets other work run, and measures how long it held the event loop. */
  private async yieldTurn(): Promise<void> {
    const startMs = this.runtime.nowMs();
    await new Promise<void>((resolve) => this.runtime.schedule(resolve, 0));
    this.lagSampledAtMs = this.runtime.nowMs();
    const delayMs = Math.max(0, this.lagSampledAtMs - startMs - TIMER_FLOOR_MS);
    this.lagMs = this.lagMs * (1 - SMOOTHING) + delayMs * SMOOTHING;
  }

  /** How long the sender should wait before its next batch: 0 while this node keeps up. */
  private retryAfterMs(): number {
    let waitMs = this.waiting.length * this.applyMs;
    if (this.lagMs > this.options.lagMsHigh) waitMs += this.lagMs * LAG_BACKOFF_FACTOR;
    return Math.min(this.options.retryAfterMsMax, Math.round(waitMs));
  }

  private async enterSlot(): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return;
    }
    if (this.waiting.length >= this.options.queuedBatchesMax) throw new OverloadedError(this.options.queuedBatchesMax, 'handoff batches are waiting to be applied');
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot straight to the next waiting batch, in arrival order. */
  private leaveSlot(): void {
    const next = this.waiting.shift();
    if (next === undefined) this.busy = false;
    else next();
  }
}

/** Whether a chain ending at `cursor` covers everything up to `after` (null: the start of the range). */
function reaches(cursor: Uint8Array | null, after: Uint8Array | null): boolean {
  if (after === null) return true;
  return cursor !== null && compareBytes(after, cursor) <= 0;
}

function later(a: Uint8Array | null, b: Uint8Array): Uint8Array {
  return a !== null && compareBytes(a, b) >= 0 ? a : b;
}

function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
