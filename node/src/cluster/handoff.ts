/**
 * Handoff: streams partitions to their incoming owners while a membership change is pending
 * (core/transition.ts), and drops partitions this node no longer owns once the change committed.
 *
 * Sender: for each waiting transfer whose `from` is this node (at most `concurrencyMax` at a
 * time), ask the receiver where it stands (handoffStatus), then scan the partition range from
 * there in batches. Each batch carries the objects as stored, a crc32 over them and the raw key
 * of its last entry (the cursor). Between batches the sender sleeps long enough to stay under
 * `bytesPerSecondMax`. When the scan finds nothing more it tells the claimant (handoffDone).
 *
 * Receiver: checks that its ring knows the transfer (so a stale node never takes data it would
 * then drop), verifies the checksum, merges every object and only then persists the cursor.
 * A crash of either side therefore resumes from the last applied batch; re-sent objects merge
 * idempotently, so nothing is lost or duplicated.
 *
 * Cleanup: a partition this node neither owns in the committed plan nor is receiving, and for
 * which it holds no hints, is deleted in one range delete, after a grace period that lets
 * coordinators still on the old ring finish, and after an anti-entropy exchange with each of its
 * owners found nothing left to repair (so a write only this old owner got reaches them first).
 */
import { crc32 } from 'node:zlib';
import type { RingState, Transfer } from '../core/ring';
import { mayDropPartition, waitingTransfers } from '../core/transition';
import type { ConflictMode } from '../core/version';
import type { StorageEngine } from '../storage/engine';
import { decodeDataKey, hintRangeForTargetPartition, metaKey, partitionDataRange } from '../storage/keys';
import { hasValidChecksum } from '../storage/objectCodec';
import type { PeerTransport } from '../transport/peerClient';
import type { HandoffBatchRequest, HandoffStatusResponse } from '../transport/peerMessages';
import type { Coordinator } from './coordinator';
import { ALWAYS_ADMIT, type BackgroundAdmission } from './backgroundBudget';
import { MembershipError, type Membership } from './membership';
import { every, type Runtime } from './runtime';
import type { TreeStore } from './treeStore';

export interface HandoffOptions {
  /** How often to look for transfers to start and partitions to drop. */
  readonly intervalMs: number;
  readonly batchKeysMax: number;
  readonly batchBytesMax: number;
  readonly bytesPerSecondMax: number;
  /** Transfers this node sends at once. */
  readonly concurrencyMax: number;
  readonly timeoutMs: number;
  /** How long a partition must stay droppable before its range is deleted. */
  readonly dropGraceMs: number;
  /** The node's background budget, asked before each batch a sender streams; absent: never wait. */
  readonly budget?: BackgroundAdmission;
  /**
   * Brings the partition's owners up to date with this node's copy before it is dropped (an
   * anti-entropy exchange with each); false (e.g. an owner is down): keep the copy for now.
   * Absent: drop without it.
   */
  readonly syncBeforeDrop?: (partition: number, owners: readonly string[]) => Promise<boolean>;
}

export interface HandoffMetrics {
  handoffBytes(count: number): void;
  handoffKeys(count: number): void;
  handoffPending(count: number): void;
}

export interface TransferView extends Omit<Transfer, 'state'> {
  /** The ring's state, or "streaming" once this node has sent or received part of the transfer. */
  readonly state: Transfer['state'] | 'streaming';
  /** Set when this node sends or receives the transfer. */
  readonly role?: 'sending' | 'receiving';
  readonly keysDone?: number;
  readonly keysTotal?: number;
  readonly bytesDone?: number;
  readonly bytesPerSecond?: number;
  readonly etaSeconds?: number | null;
}

interface Progress {
  role: 'sending' | 'receiving';
  keysDone: number;
  keysTotal: number;
  bytesDone: number;
  startedMs: number;
}

export interface HandoffPeer {
  handoffBatch(request: HandoffBatchRequest): Promise<HandoffStatusResponse>;
  handoffStatus(request: { transferId: string }): Promise<HandoffStatusResponse>;
}

const cursorKey = (transferId: string) => metaKey(`handoff/${transferId}`);
/** Framing counted per streamed entry on top of its bytes (msgpack map and field names). */
const ENTRY_OVERHEAD_BYTES = 32;

export class Handoff implements HandoffPeer {
  private stopLoop: () => void = () => undefined;
  private stopped = false;
  private readonly progress = new Map<string, Progress>();
  private readonly sending = new Set<string>();
  private readonly workers = new Set<Promise<void>>();
  /** Transfers that failed in this round of workers; retried from the next tick. */
  private readonly failed = new Set<string>();
  private readonly droppableSinceMs = new Map<number, number>();

  constructor(
    private readonly engine: StorageEngine,
    private readonly trees: TreeStore,
    private readonly coordinator: Coordinator,
    private readonly membership: Membership,
    private readonly transport: PeerTransport,
    private readonly runtime: Runtime,
    private readonly metrics: HandoffMetrics,
    private readonly options: HandoffOptions,
    private readonly conflictModeOf: (bucket: string) => ConflictMode,
    private readonly onError: (what: string, error: unknown) => void,
    /**
     * Called before a partition's range is deleted, so the node takes a new actor id first: once
     * it forgot the partition's contexts it must never stamp a dot it used before (as hint
     * delivery and the tombstone reaper do before they drop copies).
     */
    private readonly onLocalCopiesDropped: () => void = () => undefined,
  ) {}

  start(): void {
    this.stopped = false;
    this.stopLoop = every(this.runtime, this.options.intervalMs, () => this.tick(), (e) => this.onError('handoff', e));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopLoop();
    await Promise.allSettled([...this.workers]);
  }

  /** Transfers still to stream or confirm, as the ring says. */
  backlog(): number {
    return waitingTransfers(this.membership.ring()).length;
  }

  /** Every pending transfer, with progress for those this node sends or receives. */
  view(): TransferView[] {
    const now = this.runtime.nowMs();
    return (this.membership.ring().pending?.transfers ?? []).map((t) => {
      const p = this.progress.get(t.id);
      if (p === undefined) return { ...t };
      const seconds = Math.max(0.001, (now - p.startedMs) / 1000);
      const keysPerSecond = p.keysDone / seconds;
      const left = Math.max(0, p.keysTotal - p.keysDone);
      return {
        ...t,
        // The ring says "waiting" until the receiver confirms; a transfer with progress is under way.
        state: t.state === 'done' ? 'done' : 'streaming',
        role: p.role,
        keysDone: p.keysDone,
        keysTotal: p.keysTotal,
        bytesDone: p.bytesDone,
        bytesPerSecond: Math.round(p.bytesDone / seconds),
        etaSeconds: t.state === 'done' ? 0 : keysPerSecond > 0 && p.keysTotal > 0 ? Math.round(left / keysPerSecond) : null,
      };
    });
  }

  // ---- receiver ----

  async handoffStatus(request: { transferId: string }): Promise<HandoffStatusResponse> {
    const cursor = await this.engine.get(cursorKey(request.transferId));
    return { cursor: cursor ?? null };
  }

  async handoffBatch(request: HandoffBatchRequest): Promise<HandoffStatusResponse> {
    const transfer = this.membership.ring().pending?.transfers.find((t) => t.id === request.transferId);
    if (transfer === undefined || transfer.to !== this.membership.selfId || transfer.partition !== request.partition) {
      // A node that has not yet heard of the change would drop this data again: refuse, the sender retries.
      throw new MembershipError('MEMBERSHIP_CONFLICT', `transfer ${request.transferId} is not pending for ${this.membership.selfId} in ring version ${this.membership.ring().version}`);
    }
    if (checksumOf(request.entries) !== request.checksum) {
      throw new MembershipError('PARAMETER_INVALID', `handoff batch of ${request.transferId} fails its checksum`);
    }
    // The entries are distinct keys, so they are applied together: their writes land in the same
    // event-loop turns and storage commits them as a few group batches instead of one each.
    await Promise.all(request.entries.map((entry) => this.coordinator.applyReplica(request.partition, entry.bucket, entry.key, entry.object, false, undefined, this.conflictModeOf(entry.bucket))));
    // The cursor is written after the objects, so it never claims a batch that was not applied.
    await this.engine.put(cursorKey(request.transferId), request.cursor, { sync: true });
    const p = this.progressOf(transfer, 'receiving', request.keysTotal ?? 0);
    p.keysDone += request.entries.length;
    p.bytesDone += request.entries.reduce((sum, e) => sum + e.object.length, 0);
    return { cursor: request.cursor };
  }

  // ---- sender ----

  private async tick(): Promise<void> {
    const ring = this.membership.ring();
    this.metrics.handoffPending(waitingTransfers(ring).length);
    while (!this.stopped && this.workers.size < this.options.concurrencyMax && this.nextTransfer() !== undefined) {
      const worker = this.work().finally(() => this.workers.delete(worker));
      this.workers.add(worker);
    }
    await this.cleanup(ring);
  }

  /** A waiting transfer this node sends that no worker has taken, to a receiver that is up. */
  private nextTransfer(): Transfer | undefined {
    const self = this.membership.selfId;
    return waitingTransfers(this.membership.ring()).find((t) => t.from === self && !this.sending.has(t.id) && !this.failed.has(t.id) && this.membership.isUp(t.to));
  }

  /**
   * One worker sends transfers one after the other until none is left, so a change with many
   * small partitions does not wait a tick per partition. A transfer that failed is left to the
   * next tick (its receiver may be down or behind on gossip), which bounds the loop.
   */
  private async work(): Promise<void> {
    for (let transfer = this.nextTransfer(); transfer !== undefined && !this.stopped; transfer = this.nextTransfer()) {
      const id = transfer.id;
      this.sending.add(id);
      try {
        await this.send(transfer);
      } catch (error) {
        this.failed.add(id);
        this.onError(`handoff ${id}`, error);
      } finally {
        this.sending.delete(id);
      }
    }
    this.failed.clear();
  }

  private stillWaiting(id: string): boolean {
    return waitingTransfers(this.membership.ring()).some((t) => t.id === id);
  }

  private async send(transfer: Transfer): Promise<void> {
    const receiver = this.membership.member(transfer.to);
    if (receiver === undefined) return;
    const call = <M extends 'handoffStatus' | 'handoffBatch'>(method: M, body: Parameters<HandoffPeer[M]>[0]) => this.transport.call(receiver.peerUrl, method, body as never, this.options.timeoutMs);
    const status = await call('handoffStatus', { transferId: transfer.id });
    let after = status.cursor ?? undefined;
    const range = partitionDataRange(transfer.partition);
    const progress = this.progressOf(transfer, 'sending', await this.engine.count(range));
    // Writes during the stream also reach the receiver directly, so the scan only has to reach
    // the end of the range once; the bound guards against a range that keeps growing.
    const batchesMax = Math.ceil(progress.keysTotal / this.options.batchKeysMax) * 4 + 100;
    for (let batchNo = 0; batchNo < batchesMax; batchNo++) {
      if (this.stopped || !this.stillWaiting(transfer.id)) return;
      const entries: { bucket: string; key: string; object: Uint8Array }[] = [];
      let bytes = 0;
      let cursor: Uint8Array | undefined;
      const gte = after === undefined ? range.gte : successor(after);
      for await (const [rawKey, value] of this.engine.scan({ gte, lt: range.lt, limit: this.options.batchKeysMax })) {
        const { bucket, key } = decodeDataKey(rawKey);
        cursor = rawKey;
        // A corrupt copy is not sent (the receiver would refuse the whole batch, for ever): the
        // new owner gets the key from another replica through anti-entropy, as for a lost copy.
        if (!hasValidChecksum(value)) {
          this.onError('handoff', new Error(`skipped a corrupt stored object of ${bucket}/${key} in partition ${transfer.partition}`));
          continue;
        }
        entries.push({ bucket, key, object: value });
        // Names count too: with long keys and small values they are most of the message.
        bytes += value.length + bucket.length + key.length + ENTRY_OVERHEAD_BYTES;
        if (bytes >= this.options.batchBytesMax) break;
      }
      if (cursor === undefined) {
        const ring = await this.membership.handleHandoffDone(transfer.id);
        this.metrics.handoffPending(waitingTransfers(ring).length);
        // The claimant may not know the change yet (it just took over from a leaver): retry later.
        if (waitingTransfers(ring).some((t) => t.id === transfer.id)) throw new Error(`the claimant has not recorded ${transfer.id} yet`);
        return;
      }
      // The background budget is asked once a batch is read (no iterator open while it waits)
      // and before it is sent; finishing an empty transfer costs nothing worth holding back.
      await (this.options.budget ?? ALWAYS_ADMIT).admit('handoff');
      if (this.stopped || !this.stillWaiting(transfer.id)) return;
      const checksum = checksumOf(entries);
      const reply = await call('handoffBatch', { transferId: transfer.id, partition: transfer.partition, entries, checksum, cursor, keysTotal: progress.keysTotal });
      after = reply.cursor ?? cursor;
      progress.keysDone += entries.length;
      progress.bytesDone += bytes;
      this.metrics.handoffKeys(entries.length);
      this.metrics.handoffBytes(bytes);
      // Workers share the node's budget, so each sleeps as if it had only its share of the rate.
      await this.sleep(((bytes * this.options.concurrencyMax) / this.options.bytesPerSecondMax) * 1000);
    }
  }

  private progressOf(transfer: Transfer, role: 'sending' | 'receiving', keysTotal: number): Progress {
    let p = this.progress.get(transfer.id);
    if (p === undefined) {
      p = { role, keysDone: 0, keysTotal, bytesDone: 0, startedMs: this.runtime.nowMs() };
      this.progress.set(transfer.id, p);
    }
    if (keysTotal > 0) p.keysTotal = keysTotal;
    return p;
  }

  private sleep(delayMs: number): Promise<void> {
    return delayMs <= 0 ? Promise.resolve() : new Promise((resolve) => this.runtime.schedule(resolve, delayMs));
  }

  // ---- cleanup ----

  private async cleanup(ring: RingState): Promise<void> {
    const self = this.membership.selfId;
    const now = this.runtime.nowMs();
    // Progress and cursors of transfers that are no longer pending are finished business.
    const pendingIds = new Set((ring.pending?.transfers ?? []).map((t) => t.id));
    for (const id of [...this.progress.keys()]) {
      if (pendingIds.has(id)) continue;
      this.progress.delete(id);
      await this.engine.del(cursorKey(id));
    }
    for (let partition = 0; partition < ring.partitionCount; partition++) {
      if (this.stopped) return;
      if (!mayDropPartition(ring, self, partition)) {
        this.droppableSinceMs.delete(partition);
        continue;
      }
      const since = this.droppableSinceMs.get(partition) ?? now;
      this.droppableSinceMs.set(partition, since);
      if (now - since < this.options.dropGraceMs) continue;
      if (!(await this.holdsData(partition)) || (await this.holdsHints(ring, partition))) continue;
      // A write during the change may have reached this old owner but not a new one (its extra
      // copy failed, or the coordinator judged the receiver down, after the stream had passed the
      // key): the new owners get whatever this copy has that they lack before it goes.
      const owners = (this.membership.ring().plan.owners[partition] ?? []).filter((id) => id !== self);
      if (!(await this.syncedBeforeDrop(partition, owners))) continue;
      // The ring may have moved on while this round awaited storage (a change that brings the
      // partition back, or an aborted one): decide on the ring of now, just before deleting.
      if (!mayDropPartition(this.membership.ring(), self, partition)) continue;
      this.onLocalCopiesDropped();
      await this.engine.deleteRange(partitionDataRange(partition));
      this.trees.forget(partition);
    }
  }

  /** Whether the owners are in step with this copy; a failed exchange means not yet (next tick retries). */
  private async syncedBeforeDrop(partition: number, owners: readonly string[]): Promise<boolean> {
    if (this.options.syncBeforeDrop === undefined) return true;
    try {
      return await this.options.syncBeforeDrop(partition, owners);
    } catch (error) {
      this.onError(`sync of partition ${partition} before dropping it`, error);
      return false;
    }
  }

  private async holdsData(partition: number): Promise<boolean> {
    for await (const _ of this.engine.scan({ ...partitionDataRange(partition), limit: 1 })) return true;
    return false;
  }

  /** Hinted copies live in the partition's data range; they stay until delivered. */
  private async holdsHints(ring: RingState, partition: number): Promise<boolean> {
    for (const member of ring.members) {
      for await (const _ of this.engine.scan({ ...hintRangeForTargetPartition(member.id, partition), limit: 1 })) return true;
    }
    return false;
  }
}

/**
 * crc32 of the entries' objects concatenated in order, computed piece by piece: the same value
 * as over one concatenated buffer, without copying a whole batch (a profile showed the copy).
 */
function checksumOf(entries: readonly { readonly object: Uint8Array }[]): number {
  let crc = 0;
  for (const entry of entries) crc = crc32(entry.object, crc);
  return crc;
}

/** The smallest key after `key`: resume a scan just past the last key sent. */
function successor(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}
