/**
 * Hinted handoff delivery. A node that took a write for an unreachable primary stored the
 * object plus a hint record (storage/keys hintKey) in one batch. This loop finds hints per
 * target, waits until the target is up, sends each hinted object there, and only after the
 * target acknowledged removes the hint, and the local copy too when this node does not own the
 * partition. Removal is conditional: if a newer write re-hinted the key meanwhile, the hint's
 * stamp differs and the hint stays for the next round.
 *
 * Bounds: at most `batchSize` hints per target per round, `hintsPerSecondMax` overall, and
 * exponential back-off per target after a failure. Each batch also asks the node's background
 * budget first (backgroundBudget.ts), so delivery waits while clients keep the node busy.
 *
 * A hinted copy that fails its checksum can never be delivered: its hint is removed like a
 * delivered one (and the copy with it when this node does not own the key), and the owner gets
 * the key from the other replicas by read repair or anti-entropy. Otherwise one bad record would
 * stop every later hint for that target.
 */
import { preferenceList } from '../core/partition';
import { activeMembers } from '../core/ring';
import type { StorageEngine } from '../storage/engine';
import { decodeHintKey, hintRangeForTarget } from '../storage/keys';
import type { VersionedObject } from '../core/version';
import { CorruptObjectError, encodeObject } from '../storage/objectCodec';
import type { ObjectStore } from '../storage/objectStore';
import type { PeerTransport } from '../transport/peerClient';
import { ALWAYS_ADMIT, type BackgroundAdmission } from './backgroundBudget';
import type { Membership } from './membership';
import { every, type Runtime } from './runtime';

export interface HintOptions {
  readonly intervalMs: number;
  readonly batchSize: number;
  readonly hintsPerSecondMax: number;
  readonly timeoutMs: number;
  readonly backoffMaxMs: number;
  /** Asked before each batch; absent: never wait. */
  readonly budget?: BackgroundAdmission;
}

export interface HintMetrics {
  delivered(count: number): void;
  backlog(total: number): void;
}

export class HintDeliverer {
  private stopLoop: () => void = () => undefined;
  private readonly backoff = new Map<string, { untilMs: number; delayMs: number }>();
  private backlogTotal = 0;

  constructor(
    private readonly engine: StorageEngine,
    private readonly store: ObjectStore,
    private readonly membership: Membership,
    private readonly transport: PeerTransport,
    private readonly runtime: Runtime,
    private readonly metrics: HintMetrics,
    private readonly options: HintOptions,
    private readonly onError: (what: string, error: unknown) => void,
    /** Called before local copies may be dropped, so the node takes a fresh actor id for dots first. */
    private readonly onLocalCopiesDropped: () => void,
  ) {}

  start(): void {
    this.stopLoop = every(this.runtime, this.options.intervalMs, () => this.round(), (e) => this.onError('hint delivery', e));
  }

  stop(): void {
    this.stopLoop();
  }

  /** Hints waiting, as counted by the last round. */
  backlog(): number {
    return this.backlogTotal;
  }

  /** One delivery round over every target that has hints; exposed for tests and the simulator. */
  async round(): Promise<void> {
    const ring = this.membership.ring();
    let total = 0;
    let budget = Math.max(1, Math.floor((this.options.hintsPerSecondMax * this.options.intervalMs) / 1000));
    for (const member of ring.members) {
      if (member.id === this.membership.selfId) continue;
      const range = hintRangeForTarget(member.id);
      const waiting = await this.engine.count(range);
      total += waiting;
      // A target that left the ring owns nothing any more: its hinted writes go to the key's
      // current primaries instead, so a write a stand-in took for it is not stranded.
      const left = member.state === 'left';
      if (waiting === 0 || budget <= 0 || (!left && !this.membership.isUp(member.id)) || this.backingOff(member.id)) continue;
      const limit = Math.min(this.options.batchSize, budget);
      try {
        const delivered = await this.deliverBatch(member.id, left ? undefined : member.peerUrl, limit);
        budget -= delivered;
        total -= delivered;
        this.metrics.delivered(delivered);
        this.backoff.delete(member.id);
      } catch (error) {
        this.membership.recordFailure(member.id);
        this.backOff(member.id);
        this.onError(`hint delivery to ${member.id}`, error);
      }
    }
    this.backlogTotal = total;
    this.metrics.backlog(total);
  }

  /**
   * Delivers up to `limit` hints of `target`: to its `peerUrl` while it owns the key's partition
   * (or will, once the pending change commits); otherwise (it left, or a change moved the
   * partition away from it while the hint waited) to every current primary of the key other than
   * this node, all of which must be up. A hint delivered to a former owner would reach the new
   * owners only when that node syncs before dropping the partition; until then reads would miss
   * an acknowledged write (found by the simulator with joins, seed 1697).
   */
  private async deliverBatch(target: string, peerUrl: string | undefined, limit: number): Promise<number> {
    const ring = this.membership.ring();
    const members = activeMembers(ring).map((m) => m.id);
    const ownsNowOrSoon = (id: string, partition: number) =>
      preferenceList(ring.plan, partition, members).primaries.includes(id) || (ring.pending?.plan.owners[partition]?.includes(id) ?? false);
    const destinations = (partition: number): string[] => {
      if (peerUrl !== undefined && ownsNowOrSoon(target, partition)) return [peerUrl];
      const primaries = preferenceList(ring.plan, partition, members).primaries.filter((id) => id !== this.membership.selfId);
      const down = primaries.filter((id) => !this.membership.isUp(id));
      const why = peerUrl === undefined ? 'which left' : `which no longer owns partition ${partition}`;
      if (down.length > 0) throw new Error(`the current owners ${down.join(', ')} of a hint for ${target}, ${why}, are down`);
      return primaries.map((id) => ring.members.find((m) => m.id === id)!.peerUrl);
    };
    let delivered = 0;
    let actorRenewed = false;
    // One admission per batch, before the scan: waiting inside it would hold a storage iterator open.
    await (this.options.budget ?? ALWAYS_ADMIT).admit('hints');
    for await (const [rawKey, stamp] of this.engine.scan({ ...hintRangeForTarget(target), limit })) {
      const hint = decodeHintKey(rawKey);
      const object = await this.readHinted(hint.partition, hint.bucket, hint.key);
      if (object !== undefined) {
        const encoded = encodeObject(object);
        for (const url of destinations(hint.partition)) {
          await this.transport.call(url, 'replicate', { partition: hint.partition, bucket: hint.bucket, key: hint.key, object: encoded, sync: true }, this.options.timeoutMs);
        }
      }
      // A node keeps its copy when it owns the key now or will own it once the pending change
      // commits: a joining node that stood in for a down primary is also the key's new owner,
      // and dropping its copy there would leave the new owners one copy short.
      const owned = ownsNowOrSoon(this.membership.selfId, hint.partition);
      // Dots must never repeat. Once this node forgot its copy of a key it may later coordinate
      // a write for that key again, so it takes a new actor id BEFORE the copy can go: a write
      // that slips in between (a delivery later in this batch awaits the network, and a put
      // waiting for the key's lock runs as soon as removeHint releases it) then already uses
      // the new id. Such a write also re-stamps the hint, so the copy it wrote is not dropped,
      // which is why one renewal per batch is enough. Renewing after the loop, as before, let a
      // put reuse the old id's counters and silently replace acknowledged siblings (found by
      // the simulator, seed 1221), and was skipped altogether when a later delivery failed.
      if (!owned && !actorRenewed) {
        this.onLocalCopiesDropped();
        actorRenewed = true;
      }
      await this.store.removeHint(target, hint.partition, hint.bucket, hint.key, stamp, !owned);
      delivered++;
    }
    return delivered;
  }

  /** The hinted copy, or undefined when it is gone or failed its checksum (see the module comment). */
  private async readHinted(partition: number, bucket: string, key: string): Promise<VersionedObject | undefined> {
    try {
      return await this.store.read(partition, bucket, key);
    } catch (error) {
      if (error instanceof CorruptObjectError) return undefined;
      throw error;
    }
  }

  private backingOff(target: string): boolean {
    const state = this.backoff.get(target);
    return state !== undefined && state.untilMs > this.runtime.nowMs();
  }

  private backOff(target: string): void {
    const previous = this.backoff.get(target)?.delayMs ?? this.options.intervalMs;
    const delayMs = Math.min(previous * 2, this.options.backoffMaxMs);
    this.backoff.set(target, { untilMs: this.runtime.nowMs() + delayMs, delayMs });
  }
}
