/**
 * Tombstone reaping: removes deletes that every member has confirmed, so storage does not grow
 * for ever with deleted keys. The rules (and why they keep deleted keys deleted) are in
 * core/tombstones.ts; this loop finds candidates, asks the other members and removes.
 *
 * Every `intervalMs` one round runs (never overlapping itself):
 * - nothing is reaped while any active member is down: its copies cannot be checked (the
 *   partitions are still scanned, so the pending count stays true);
 * - partitions this node owns are visited in turn, but only those that may hold a tombstone: all
 *   of them after a start, then those a tombstone was written to (the ObjectStore observer) or
 *   that still held unreaped tombstones at their last visit and whose earliest one is due;
 * - a visited partition is skipped while a membership change moves it or this node holds a hint
 *   in it; otherwise it is scanned in key order, and each tombstone older than the grace period
 *   is read from every other active member (peer `read`, which batches per peer). When all hold
 *   the same tombstone or nothing, this node deletes its own copy, under the key's lock and only
 *   if it is still that tombstone. Every replica does the same for its own copy.
 *
 * Before the first removal of a round the node takes a fresh actor id (as hint delivery does
 * before dropping copies): a node that forgot a key's context must never stamp a dot it used
 * before, or a client still holding the old context would silently discard the new write.
 *
 * Bounds: at most `scanKeysPerRoundMax` objects read and `keysPerRoundMax` tombstones confirmed
 * per round; a partition left half-scanned resumes from its cursor in the next round.
 */
import { equalObjects, isTombstoned } from '../core/dvv';
import { membersToConfirm, partitionBlocker, reapVerdict, tombstoneOldEnough, type ReapBlocker, type ReplicaAnswer } from '../core/tombstones';
import type { RingState } from '../core/ring';
import type { VersionedObject } from '../core/version';
import { keySuccessor } from '../storage/bytes';
import type { StorageEngine } from '../storage/engine';
import { decodeDataKey, hintRangeForTargetPartition, partitionDataRange } from '../storage/keys';
import { CorruptObjectError, decodeObject } from '../storage/objectCodec';
import type { ObjectChangeObserver, ObjectStore } from '../storage/objectStore';
import { PeerCallError, type PeerTransport } from '../transport/peerClient';
import type { Membership } from './membership';
import { every, type Runtime } from './runtime';

export interface ReaperOptions {
  /** Milliseconds between rounds; 0 disables reaping (tombstones are then kept for ever). */
  readonly intervalMs: number;
  /** A tombstone younger than this is never reaped (core/tombstones.ts rule 1). */
  readonly graceMs: number;
  /** Tombstones confirmed with the other members per round. */
  readonly keysPerRoundMax: number;
  /** Objects read per round while looking for tombstones. */
  readonly scanKeysPerRoundMax: number;
  /** Timeout of one confirmation read. */
  readonly timeoutMs: number;
}

export interface ReaperMetrics {
  tombstonesReaped(count: number): void;
  /** Tombstones this node holds in its partitions, as counted by the last visit of each. */
  tombstonesPending(count: number): void;
}

export interface ReapRoundReport {
  readonly atMs: number;
  readonly scanned: number;
  readonly tombstones: number;
  readonly confirmed: number;
  readonly reaped: number;
  /** Partitions or keys skipped, by reason. */
  readonly blocked: Partial<Record<ReapBlocker, number>>;
}

export interface ReaperSummary {
  readonly enabled: boolean;
  readonly graceMs: number;
  readonly reaped: number;
  readonly pending: number;
  readonly lastRound: ReapRoundReport | null;
}

/** Confirmation reads in flight at once: one chunk travels as one peer batch per member. */
const CONFIRM_CHUNK_KEYS = 64;
const SCAN_PAGE_KEYS = 256;

interface Candidate {
  readonly bucket: string;
  readonly key: string;
  readonly object: VersionedObject;
}

/** What a partition's last visit left: unreaped tombstones, and when the next is worth a look. */
interface PartitionState {
  tombstones: number;
  dueMs: number;
}

/** A partition whose scan ran out of budget: where it resumes and what it counted so far. */
interface Cursor {
  readonly partition: number;
  after: Uint8Array;
  tombstones: number;
  dueMs: number;
}

type Counts = { -readonly [K in keyof ReapRoundReport]: ReapRoundReport[K] } & { blocked: Partial<Record<ReapBlocker, number>> };

interface Budget {
  scan: number;
  confirm: number;
  renewed: boolean;
}

export class Reaper {
  private stopLoop: () => void = () => undefined;
  private stopped = false;
  private inFlight: Promise<unknown> | undefined;
  private initialised = false;
  /** Partitions a tombstone was written to since their last visit began. */
  private readonly dirty = new Set<number>();
  private readonly partitions = new Map<number, PartitionState>();
  private cursor: Cursor | undefined;
  private partitionTurn = 0;
  private reapedTotal = 0;
  private last: ReapRoundReport | undefined;

  constructor(
    private readonly engine: StorageEngine,
    private readonly store: ObjectStore,
    private readonly membership: Membership,
    private readonly transport: PeerTransport,
    private readonly runtime: Runtime,
    private readonly metrics: ReaperMetrics,
    private readonly options: ReaperOptions,
    /** Called before the first local copy of a round is removed: the node takes a new actor id. */
    private readonly onLocalCopiesDropped: () => void,
    private readonly onError: (what: string, error: unknown) => void,
  ) {}

  /** Install beside the tree store's observer: notes partitions that received a tombstone. */
  readonly observe: ObjectChangeObserver = (partition, _bucket, _key, _before, after) => {
    if (after !== undefined && isTombstoned(after)) this.dirty.add(partition);
  };

  start(): void {
    if (this.options.intervalMs <= 0) return;
    this.stopped = false;
    this.stopLoop = every(
      this.runtime,
      this.options.intervalMs,
      async () => {
        const round = this.round();
        this.inFlight = round;
        try {
          await round;
        } finally {
          this.inFlight = undefined;
        }
      },
      (e) => this.onError('tombstone reaping', e),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopLoop();
    await this.inFlight?.catch(() => undefined);
  }

  summary(): ReaperSummary {
    return { enabled: this.options.intervalMs > 0, graceMs: this.options.graceMs, reaped: this.reapedTotal, pending: this.pendingTotal(), lastRound: this.last ?? null };
  }

  /** One round; exposed for tests. */
  async round(): Promise<ReapRoundReport> {
    const ring = this.membership.ring();
    const self = this.membership.selfId;
    const now = this.runtime.nowMs();
    const report: Counts = { atMs: now, scanned: 0, tombstones: 0, confirmed: 0, reaped: 0, blocked: {} };
    if (!this.initialised) {
      // Storage may hold tombstones from before the start: every partition is worth one visit.
      for (let p = 0; p < ring.partitionCount; p++) this.dirty.add(p);
      this.initialised = true;
    }
    const owned = this.ownedPartitions(ring, self);
    const budget: Budget = { scan: this.options.scanKeysPerRoundMax, confirm: this.options.keysPerRoundMax, renewed: false };
    for (const partition of this.visitOrder(owned)) {
      if (this.stopped || budget.scan <= 0 || budget.confirm <= 0) break;
      if (!this.worthVisiting(partition, now)) continue;
      const blocker = partitionBlocker(ring, self, partition, (id) => this.membership.isUp(id)) ?? ((await this.holdsHints(ring, partition)) ? 'hint-pending' : undefined);
      if (blocker !== undefined) report.blocked[blocker] = (report.blocked[blocker] ?? 0) + 1;
      // With a member down nothing can be confirmed, but the partition is still counted, so the
      // pending gauge shows what waits for that member.
      if (blocker !== undefined && blocker !== 'member-down') continue;
      const complete = await this.visit(ring, partition, now, budget, report, blocker === undefined);
      if (!complete) break;
    }
    return this.finish(report);
  }

  // ---- internals ----

  private finish(report: ReapRoundReport): ReapRoundReport {
    this.last = report;
    this.metrics.tombstonesPending(this.pendingTotal());
    return report;
  }

  private pendingTotal(): number {
    let total = 0;
    for (const state of this.partitions.values()) total += state.tombstones;
    return total;
  }

  private ownedPartitions(ring: RingState, self: string): number[] {
    const owned: number[] = [];
    ring.plan.owners.forEach((owners, partition) => {
      if (owners.includes(self)) owned.push(partition);
    });
    // Counts of partitions this node gave away no longer describe anything it holds.
    for (const partition of [...this.partitions.keys()]) if (!owned.includes(partition)) this.partitions.delete(partition);
    if (this.cursor !== undefined && !owned.includes(this.cursor.partition)) this.cursor = undefined;
    return owned;
  }

  /** A half-scanned partition first, then the owned partitions in turn from where the last round stopped. */
  private visitOrder(owned: readonly number[]): number[] {
    if (owned.length === 0) return [];
    const start = this.partitionTurn % owned.length;
    this.partitionTurn = start + 1;
    const rotated = [...owned.slice(start), ...owned.slice(0, start)];
    const resume = this.cursor?.partition;
    return resume === undefined ? rotated : [resume, ...rotated.filter((p) => p !== resume)];
  }

  private worthVisiting(partition: number, now: number): boolean {
    if (this.cursor?.partition === partition || this.dirty.has(partition)) return true;
    const state = this.partitions.get(partition);
    return state !== undefined && state.tombstones > 0 && state.dueMs <= now;
  }

  /**
   * Scans one partition (from its cursor, if a round left it half-done), reaping what it can.
   * Returns false when the round's budget ran out before the end of the partition.
   */
  private async visit(ring: RingState, partition: number, now: number, budget: Budget, report: Counts, mayReap: boolean): Promise<boolean> {
    const resumed = this.cursor?.partition === partition ? this.cursor : undefined;
    // Tombstones written from here on mark the partition again, so none is missed by this visit.
    if (resumed === undefined) this.dirty.delete(partition);
    let after = resumed?.after;
    let tombstones = resumed?.tombstones ?? 0;
    let dueMs = resumed?.dueMs ?? Number.POSITIVE_INFINITY;
    const range = partitionDataRange(partition);
    for (;;) {
      const limit = Math.min(SCAN_PAGE_KEYS, budget.scan, budget.confirm);
      if (this.stopped || limit <= 0) {
        if (after !== undefined) this.cursor = { partition, after, tombstones, dueMs };
        return false;
      }
      const page = await this.readPage(range, after, limit);
      budget.scan -= page.entries;
      report.scanned += page.entries;
      if (page.last !== undefined) after = page.last;
      const candidates: Candidate[] = [];
      for (const c of page.tombstones) {
        report.tombstones++;
        if (!mayReap) {
          tombstones++;
          dueMs = Math.min(dueMs, now + this.options.intervalMs);
        } else if (tombstoneOldEnough(c.object, now, this.options.graceMs)) candidates.push(c);
        else {
          tombstones++;
          dueMs = Math.min(dueMs, Math.max(...c.object.siblings.map((s) => s.lastModifiedMs)) + this.options.graceMs);
        }
      }
      for (let i = 0; i < candidates.length; i += CONFIRM_CHUNK_KEYS) {
        const chunk = candidates.slice(i, i + CONFIRM_CHUNK_KEYS);
        const outcome = await this.confirmAndReap(ring, partition, chunk, budget, report.blocked);
        report.confirmed += chunk.length;
        report.reaped += outcome.reaped;
        tombstones += chunk.length - outcome.reaped;
        // A tombstone another member still disagrees on is looked at again next round.
        if (outcome.reaped < chunk.length) dueMs = Math.min(dueMs, now + this.options.intervalMs);
        if (outcome.unreachable) {
          // Members stopped answering: the rest of the partition waits for the next round.
          this.cursor = { partition, after: after!, tombstones, dueMs };
          return false;
        }
      }
      if (page.entries < limit) break;
    }
    this.cursor = undefined;
    this.partitions.set(partition, { tombstones, dueMs });
    return true;
  }

  /** One page of a partition's objects; corrupt records are skipped (repair replaces them). */
  private async readPage(range: { gte: Uint8Array; lt: Uint8Array }, after: Uint8Array | undefined, limit: number): Promise<{ entries: number; last: Uint8Array | undefined; tombstones: Candidate[] }> {
    const gte = after === undefined ? range.gte : keySuccessor(after);
    const tombstones: Candidate[] = [];
    let entries = 0;
    let last: Uint8Array | undefined;
    for await (const [rawKey, bytes] of this.engine.scan({ gte, lt: range.lt, limit })) {
      entries++;
      last = rawKey;
      let object: VersionedObject;
      try {
        object = decodeObject(bytes);
      } catch (error) {
        if (error instanceof CorruptObjectError) continue;
        throw error;
      }
      if (!isTombstoned(object)) continue;
      const { bucket, key } = decodeDataKey(rawKey);
      tombstones.push({ bucket, key, object });
    }
    return { entries, last, tombstones };
  }

  /** Asks every other active member for each key of the chunk, then removes the confirmed ones. */
  private async confirmAndReap(ring: RingState, partition: number, chunk: readonly Candidate[], budget: Budget, blocked: Counts['blocked']): Promise<{ reaped: number; unreachable: boolean }> {
    const expected = membersToConfirm(ring, this.membership.selfId);
    budget.confirm -= chunk.length;
    let unreachable = false;
    const answersPerKey = await Promise.all(
      chunk.map((candidate) =>
        Promise.all(
          expected.map(async (node): Promise<ReplicaAnswer> => {
            const member = ring.members.find((m) => m.id === node);
            if (member === undefined) return { node, failed: true };
            try {
              const { object } = await this.transport.call(member.peerUrl, 'read', { partition, bucket: candidate.bucket, key: candidate.key }, this.options.timeoutMs);
              this.membership.recordReply(node);
              return { node, object: object === null ? undefined : decodeObject(object) };
            } catch (error) {
              if (error instanceof PeerCallError && error.unreachable) {
                this.membership.recordFailure(node);
                unreachable = true;
              }
              return { node, failed: true };
            }
          }),
        ),
      ),
    );
    let reaped = 0;
    const now = this.runtime.nowMs();
    for (const [i, candidate] of chunk.entries()) {
      if (this.stopped) break;
      const verdict = reapVerdict(candidate.object, answersPerKey[i]!, expected, now, this.options.graceMs);
      if (!verdict.reap) {
        blocked[verdict.blocker] = (blocked[verdict.blocker] ?? 0) + 1;
        continue;
      }
      if (!budget.renewed) {
        this.onLocalCopiesDropped();
        budget.renewed = true;
      }
      if (await this.store.removeIf(partition, candidate.bucket, candidate.key, (current) => equalObjects(current, candidate.object))) reaped++;
    }
    if (reaped > 0) {
      this.reapedTotal += reaped;
      this.metrics.tombstonesReaped(reaped);
    }
    return { reaped, unreachable };
  }

  /** Hinted copies this node still has to deliver live in the partition's data range. */
  private async holdsHints(ring: RingState, partition: number): Promise<boolean> {
    for (const member of ring.members) {
      for await (const _ of this.engine.scan({ ...hintRangeForTargetPartition(member.id, partition), limit: 1 })) return true;
    }
    return false;
  }
}
