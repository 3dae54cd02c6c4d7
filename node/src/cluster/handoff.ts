/**
 * Handoff: streams partitions to their incoming owners while a membership change is pending
 * (core/transition.ts), and drops partitions this node no longer owns once the change committed.
 *
 * Sender: for each waiting transfer whose `from` is this node (at most `concurrencyMax` at a
 * time), ask the receiver where it stands (handoffStatus), then scan the partition range from
 * there in batches. Each batch carries the objects as stored, a crc32 over them, the raw key of
 * its last entry (the cursor) and the cursor it continues from. One batch goes out while the
 * receiver still applies the previous one (never more), so neither side waits for the other.
 * Sends are paced to stay under `bytesPerSecondMax`, and a receiver that answers with
 * retryAfterMs gets that pause too. When the scan finds nothing more, a closing empty batch has
 * the receiver confirm and sync every batch, and the sender tells the claimant (handoffDone).
 *
 * Receiver (handoffReceiver.ts): checks that its ring knows the transfer (so a stale node never
 * takes data it would then drop) and the checksum, applies the objects and only then advances
 * the cursor, over unbroken chains of applied batches only. A crash of either side therefore
 * resumes from the last applied batch; re-sent objects merge idempotently, so nothing is lost or
 * duplicated.
 *
 * Cleanup (handoffCleanup.ts): a partition this node neither owns in the committed plan nor is
 * receiving, and for which it holds no hints, is deleted in one range delete, after a grace
 * period and after an anti-entropy exchange with each of its owners found nothing to repair.
 */
import type { RingState, Transfer } from '../core/ring';
import { waitingTransfers } from '../core/transition';
import type { ConflictMode } from '../core/version';
import type { StorageEngine } from '../storage/engine';
import { partitionDataRange } from '../storage/keys';
import type { ObjectStore } from '../storage/objectStore';
import type { PeerTransport } from '../transport/peerClient';
import { HANDOFF_RETRY_AFTER_MS_MAX, type HandoffBatchRequest, type HandoffStatusResponse } from '../transport/handoffMessages';
import type { Coordinator } from './coordinator';
import { ALWAYS_ADMIT, type BackgroundAdmission } from './backgroundBudget';
import { Unconfirmed, checksumOf, drain, readBatch } from './handoffBatches';
import { PartitionDropper } from './handoffCleanup';
import { DEFAULT_RECEIVER_OPTIONS, HandoffReceiver, cursorKey, type HandoffReceiverOptions } from './handoffReceiver';
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
  /**
   * Brings this node's copy up to date with one other owner of the partition (an anti-entropy
   * exchange) before it streams the partition: the receiver then gets every write any reachable
   * old owner holds, not only those this sender happened to get (a sender that was down missed
   * some, and the new owners would have served reads without them). False or a failure: go on
   * anyway; what the sender lacks still reaches the new owners through hints, repair and the
   * other owners' sync before they drop the partition. Absent: stream without it.
   */
  readonly syncBeforeStream?: (partition: number, owner: string) => Promise<boolean>;
  /**
   * The node's object store: received objects for keys without a local copy are then written as
   * received, a chunk at a time (one multi-get, one batch), instead of merged one by one through
   * the coordinator. Absent: the slower per-key path (same result).
   */
  readonly store?: ObjectStore;
  /** Overrides of the receiver's chunking and load signal (DEFAULT_RECEIVER_OPTIONS). */
  readonly receiver?: Partial<Omit<HandoffReceiverOptions, 'store'>>;
  /** Batches a sender has unanswered per transfer: 2 (default) sends the next while the receiver applies one. */
  readonly batchesInFlightMax?: 1 | 2;
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

export class Handoff implements HandoffPeer {
  private stopLoop: () => void = () => undefined;
  private stopped = false;
  /** Between start() and stop(): only then do ring changes start senders. */
  private started = false;
  private readonly progress = new Map<string, Progress>();
  private readonly sending = new Set<string>();
  private readonly workers = new Set<Promise<void>>();
  /** Transfers that failed in this round of workers; retried from the next tick. */
  private readonly failed = new Set<string>();
  private readonly receiver: HandoffReceiver;
  private readonly dropper: PartitionDropper;

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
  ) {
    this.receiver = new HandoffReceiver(engine, coordinator, runtime, conflictModeOf, { ...DEFAULT_RECEIVER_OPTIONS, ...options.receiver, ...(options.store === undefined ? {} : { store: options.store }) });
    this.dropper = new PartitionDropper(engine, trees, membership, runtime, options, onError, onLocalCopiesDropped);
    // A sender starts as soon as its ring shows a new change, not at its next tick (up to
    // intervalMs later, which was most of a small join's time).
    membership.onRingChange(() => this.startWorkers());
  }

  start(): void {
    this.stopped = false;
    this.started = true;
    this.stopLoop = every(this.runtime, this.options.intervalMs, () => this.tick(), (e) => this.onError('handoff', e));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.started = false;
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
    return this.receiver.status(request.transferId);
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
    const reply = await this.receiver.receive(request);
    const p = this.progressOf(transfer, 'receiving', request.keysTotal ?? 0);
    p.keysDone += request.entries.length;
    p.bytesDone += request.entries.reduce((sum, e) => sum + e.object.length, 0);
    return reply;
  }

  // ---- sender ----

  private async tick(): Promise<void> {
    const ring = this.membership.ring();
    this.metrics.handoffPending(waitingTransfers(ring).length);
    this.startWorkers();
    await this.cleanup(ring);
  }

  /** Starts workers for waiting transfers, up to concurrencyMax; the workers end when none is left. */
  private startWorkers(): void {
    while (this.started && !this.stopped && this.workers.size < this.options.concurrencyMax && this.nextTransfer() !== undefined) {
      const worker = this.work().finally(() => this.workers.delete(worker));
      this.workers.add(worker);
    }
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
    await this.syncBeforeStreaming(transfer);
    const status = await call('handoffStatus', { transferId: transfer.id });
    // The cursor of the last batch sent: the next scan starts after it.
    let sent = status.cursor;
    const progress = this.progressOf(transfer, 'sending', await this.engine.count(partitionDataRange(transfer.partition)));
    // Workers share the node's rate, so each is paced as if it had only its share of it.
    const pace = { nextSendMs: this.runtime.nowMs(), msPerByte: (1000 * this.options.concurrencyMax) / this.options.bytesPerSecondMax };
    const inFlightMax = this.options.batchesInFlightMax ?? 2;
    const inFlight: Promise<void>[] = [];
    const unconfirmed = new Unconfirmed();
    const confirm = (answer: HandoffStatusResponse): void => {
      for (const confirmed of unconfirmed.coveredBy(answer.cursor)) {
        progress.keysDone += confirmed.keys;
        progress.bytesDone += confirmed.bytes;
        this.metrics.handoffKeys(confirmed.keys);
        this.metrics.handoffBytes(confirmed.bytes);
      }
    };
    try {
      // Writes during the stream also reach the receiver directly, so the scan only has to reach
      // the end of the range once; the bound guards against a range that keeps growing.
      const batchesMax = Math.ceil(progress.keysTotal / this.options.batchKeysMax) * 4 + 100;
      for (let batchNo = 0; batchNo < batchesMax; batchNo++) {
        if (this.stopped || !this.stillWaiting(transfer.id)) return;
        const batch = await readBatch(this.engine, transfer.partition, sent, this.options, (bucket, key) => this.onError('handoff', new Error(`skipped a corrupt stored object of ${bucket}/${key} in partition ${transfer.partition}`)));
        if (batch === undefined) {
          await drain(inFlight, 0);
          // The closing batch (no entries, after = cursor) has the receiver check that every batch
          // up to the last cursor was applied and sync it. It is tiny, but still waits out a pause
          // the receiver asked for.
          await this.sleep(pace.nextSendMs - this.runtime.nowMs());
          if (sent !== null) confirm(await call('handoffBatch', { transferId: transfer.id, partition: transfer.partition, entries: [], checksum: 0, cursor: sent, after: sent }));
          await this.finish(transfer);
          return;
        }
        // The background budget is asked once a batch is read (no iterator open while it waits)
        // and before it is sent; finishing an empty transfer costs nothing worth holding back.
        await (this.options.budget ?? ALWAYS_ADMIT).admit('handoff');
        await this.sleep(pace.nextSendMs - this.runtime.nowMs());
        if (this.stopped || !this.stillWaiting(transfer.id)) return;
        const request: HandoffBatchRequest = { transferId: transfer.id, partition: transfer.partition, entries: batch.entries, checksum: checksumOf(batch.entries), cursor: batch.cursor, keysTotal: progress.keysTotal, after: sent };
        pace.nextSendMs = Math.max(pace.nextSendMs, this.runtime.nowMs()) + batch.bytes * pace.msPerByte;
        unconfirmed.add({ keys: batch.entries.length, bytes: batch.bytes, cursor: batch.cursor });
        const reply = call('handoffBatch', request).then((answer) => {
          confirm(answer);
          // A busy receiver asks for a pause before the next batch.
          const waitMs = Math.min(answer.retryAfterMs ?? 0, HANDOFF_RETRY_AFTER_MS_MAX);
          pace.nextSendMs = Math.max(pace.nextSendMs, this.runtime.nowMs() + waitMs);
        });
        // Handled when awaited below; this keeps a failure meanwhile from counting as unhandled.
        reply.catch(() => undefined);
        inFlight.push(reply);
        sent = batch.cursor;
        // At most inFlightMax batches unanswered: the next one is read while these travel.
        await drain(inFlight, inFlightMax - 1);
      }
    } finally {
      await Promise.allSettled(inFlight);
    }
  }

  /** The end of a transfer, once the closing batch was confirmed: the claimant records it done. */
  private async finish(transfer: Transfer): Promise<void> {
    const ring = await this.membership.handleHandoffDone(transfer.id);
    this.metrics.handoffPending(waitingTransfers(ring).length);
    // The claimant may not know the change yet (it just took over from a leaver): retry later.
    if (waitingTransfers(ring).some((t) => t.id === transfer.id)) throw new Error(`the claimant has not recorded ${transfer.id} yet`);
  }

  /**
   * See HandoffOptions.syncBeforeStream: with EVERY other old owner that is up, each on its own
   * (a key may sit on any one of them only); a failure only goes to onError.
   */
  private async syncBeforeStreaming(transfer: Transfer): Promise<void> {
    const sync = this.options.syncBeforeStream;
    if (sync === undefined) return;
    const self = this.membership.selfId;
    const owners = (this.membership.ring().plan.owners[transfer.partition] ?? []).filter((id) => id !== self && id !== transfer.to && this.membership.isUp(id));
    for (const owner of owners) {
      if (this.stopped) return;
      try {
        await sync(transfer.partition, owner);
      } catch (error) {
        this.onError(`sync of partition ${transfer.partition} with ${owner} before streaming it`, error);
      }
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

  /** Waits for the pace; less than a millisecond is not worth a timer (the debt stays in the pace and is paid later). */
  private sleep(delayMs: number): Promise<void> {
    return delayMs < 1 ? Promise.resolve() : new Promise((resolve) => this.runtime.schedule(resolve, delayMs));
  }

  // ---- cleanup ----

  private async cleanup(ring: RingState): Promise<void> {
    // Progress and cursors of transfers that are no longer pending are finished business.
    const pendingIds = new Set((ring.pending?.transfers ?? []).map((t) => t.id));
    this.receiver.forgetExcept(pendingIds);
    for (const id of [...this.progress.keys()]) {
      if (pendingIds.has(id)) continue;
      this.progress.delete(id);
      await this.engine.del(cursorKey(id));
    }
    await this.dropper.dropUnowned(ring, () => this.stopped);
  }
}
