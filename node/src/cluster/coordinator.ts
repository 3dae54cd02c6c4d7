/**
 * The request coordinator: Dynamo's get() and put() over the replicas of a key.
 *
 * PUT: a node that is not among the key's write targets forwards the request to one that is,
 * so version dots always come from replicas. The coordinator stamps the write locally, sends
 * the resulting object to the other targets (a fallback target also stores a hint naming the
 * primary it stands in for) and answers once the quorum tracker says w/dw/pw are met.
 *
 * GET: ask the read targets, answer after r replies merged by causality, then keep listening
 * until every target answered or timed out, and send the merged object to stale replicas
 * (read repair). A consistent read asks primaries only and needs a majority of them.
 *
 * Corruption: a replica whose stored copy fails its checksum (here or on a peer, which answers
 * STORAGE_CORRUPT) counts as not answering, so its bytes are never served, and read repair sends
 * it the merged object, which replaces the bad bytes (applyReplica uses replaceCorrupt). A write
 * whose local copy is corrupt first repairs that copy from the other replicas, then goes on.
 *
 * The decisions (targets, quorum outcomes, merging) are pure functions in core/; this module
 * only moves messages and bytes.
 */
import { encodeContext } from '../core/context';
import { EMPTY_OBJECT, merge, update, type VersionOptions } from '../core/dvv';
import { partitionOf, preferenceList, type PreferenceList } from '../core/partition';
import { majority, readOutcome, resolveRead, selectReadTargets, selectWriteTargets, writeOutcome, type ReadReply, type ReadRequirement, type ReplicaTarget, type WriteAck, type WriteRequirement } from '../core/quorum';
import { activeMembers, effectiveReplicationFactor, type RingState } from '../core/ring';
import { incomingOwners } from '../core/transition';
import type { ConflictMode, NewValue, VersionVector, VersionedObject } from '../core/version';
import type { BatchOperation } from '../storage/engine';
import { hintKey } from '../storage/keys';
import { CorruptObjectError, decodeObject, encodeObject } from '../storage/objectCodec';
import type { ObjectStore } from '../storage/objectStore';
import { PeerCallError, type PeerTransport } from '../transport/peerClient';
import { awaitQuorum, CoordinationError, type OutstandingCall } from './quorumWait';
import type { Membership } from './membership';

// Defined beside the quorum wait that raises it most; callers keep importing it from here.
export { CoordinationError };

export interface CoordinatorMetrics {
  readRepair(count: number): void;
  siblingsDropped(count: number): void;
  forwarded(): void;
}

export interface CoordinatorOptions {
  /** Timeout of one replica call. */
  readonly replicaTimeoutMs: number;
  /** Forwards allowed before a node coordinates whatever its view says. */
  readonly forwardHopsMax: number;
  readonly maxSiblings: number;
  /**
   * How two replicas' states of a key are joined; core merge unless a test swaps in a broken one
   * to prove the simulator's checker catches lost writes.
   */
  readonly mergeObjects?: MergeObjects;
}

export type MergeObjects = (a: VersionedObject, b: VersionedObject, options: VersionOptions) => VersionedObject;

export interface PutRequest {
  readonly bucket: string;
  readonly key: string;
  readonly value: NewValue;
  readonly context: VersionVector;
  readonly write: WriteRequirement;
  readonly conflictMode: ConflictMode;
  readonly hops?: number;
}

export interface GetRequest {
  readonly bucket: string;
  readonly key: string;
  readonly read: ReadRequirement;
  readonly consistent: boolean;
  readonly conflictMode: ConflictMode;
}

interface Outstanding<T> extends OutstandingCall<T> {
  readonly target: ReplicaTarget;
}

export class Coordinator {
  private hintSequence = 0;
  private listCache: { ring: RingState | undefined; lists: Map<number, PreferenceList> } = { ring: undefined, lists: new Map() };
  private readonly mergeObjects: MergeObjects;

  constructor(
    private readonly store: ObjectStore,
    private readonly membership: Membership,
    private readonly transport: PeerTransport,
    /** The actor id this node stamps dots with (node id plus incarnation, see server wiring). */
    private readonly actorId: () => string,
    private readonly metrics: CoordinatorMetrics,
    private readonly options: CoordinatorOptions,
  ) {
    this.mergeObjects = options.mergeObjects ?? merge;
  }

  async put(request: PutRequest): Promise<VersionedObject> {
    const ring = this.membership.ring();
    const partition = partitionOf(request.bucket, request.key, ring.partitionCount);
    const list = this.preferenceListOf(ring, partition);
    const isUp = (id: string) => this.membership.isUp(id);
    const targets = selectWriteTargets(list, isUp);
    const self = this.membership.selfId;
    const mine = targets.find((t) => t.node === self);
    const hops = request.hops ?? 0;
    if (mine === undefined && hops < this.options.forwardHopsMax && targets.length > 0) {
      return this.forward(request, ring, targets);
    }
    // Refuse before writing anything when the reachable targets can never meet the quorum: a
    // partial write would come back as a sibling when the client retries.
    if (writeOutcome(request.write, [], targets.map((t) => t.hintFor === undefined && list.primaries.includes(t.node))) === 'failed') {
      throw new CoordinationError('QUORUM_UNAVAILABLE', `w=${request.write.w} dw=${request.write.dw} pw=${request.write.pw} cannot be met: ${targets.length} replicas reachable`);
    }
    const versionOptions: VersionOptions = { conflictMode: request.conflictMode, maxSiblings: this.options.maxSiblings };
    const sync = request.write.dw > 0;
    let dropped = 0;
    const hintFor = mine?.hintFor;
    const writeLocal = () =>
      this.store.update(
        partition,
        request.bucket,
        request.key,
        (current) => {
          const result = update(current ?? EMPTY_OBJECT, request.context, this.actorId(), request.value, versionOptions);
          dropped = result.droppedSiblings;
          return result.object;
        },
        { sync, extraOperations: this.hintOperations(hintFor, partition, request.bucket, request.key) },
      );
    let stored: VersionedObject | undefined;
    try {
      stored = await writeLocal();
    } catch (error) {
      // A write must not forget siblings it cannot read, so it never overwrites corrupt bytes
      // blindly: it repairs the local copy from the other replicas first (false when none had a
      // copy; the retry then fails with the same error, STORAGE_CORRUPT).
      if (!(error instanceof CorruptObjectError)) throw error;
      await this.repairLocalCopy(partition, list, request.bucket, request.key, versionOptions);
      stored = await writeLocal();
    }
    if (dropped > 0) this.metrics.siblingsDropped(dropped);
    const object = stored!;
    const encoded = encodeObject(object);
    const others = targets.filter((t) => t.node !== self);
    const acks: WriteAck[] = [{ durable: sync, primary: hintFor === undefined && list.primaries.includes(self) }];
    const outstanding = others.map((target) => ({
      target,
      primary: target.hintFor === undefined,
      promise: this.replicateTo(target, { partition, bucket: request.bucket, key: request.key, object: encoded, sync }),
    }));
    // During a membership change the incoming owners get a copy too, outside the quorum count:
    // their stream may already have passed this key. A copy they miss is healed by anti-entropy
    // once they are primaries.
    const incoming = incomingOwners(ring, partition).filter((node) => node !== self && !targets.some((t) => t.node === node) && isUp(node));
    const extra = incoming.map((node) => this.replicateTo({ node }, { partition, bucket: request.bucket, key: request.key, object: encoded, sync }).catch(() => undefined));
    await awaitQuorum<{ durable: boolean }, WriteAck>(outstanding, (done, pending) => writeOutcome(request.write, [...acks, ...done], pending), (result, primary) => ({ durable: result.durable, primary }));
    await Promise.all(extra);
    return object;
  }

  async get(request: GetRequest): Promise<VersionedObject | undefined> {
    const ring = this.membership.ring();
    const n = effectiveReplicationFactor(ring);
    const partition = partitionOf(request.bucket, request.key, ring.partitionCount);
    const list = this.preferenceListOf(ring, partition);
    const targets = selectReadTargets(list, (id) => this.membership.isUp(id), request.consistent);
    const requirement: ReadRequirement = request.consistent ? { r: majority(n), pr: majority(n) } : request.read;
    if (request.consistent && targets.length < requirement.pr) {
      throw new CoordinationError('QUORUM_UNAVAILABLE', `consistent read needs ${requirement.pr} of ${n} primary replicas; ${targets.length} reachable`);
    }
    const outstanding: Outstanding<ReadReply>[] = targets.map((target) => ({
      target,
      primary: list.primaries.includes(target.node),
      promise: this.readFrom(target.node, partition, request.bucket, request.key),
    }));
    const versionOptions: VersionOptions = { conflictMode: request.conflictMode, maxSiblings: this.options.maxSiblings };
    const replies = await awaitQuorum<ReadReply, ReadReply & { primary: boolean }>(outstanding, (done, pending) => readOutcome(requirement, done, pending), (reply, primary) => ({ ...reply, primary }));
    const { merged } = resolveRead(replies, versionOptions, this.mergeCounted);
    // Read repair runs after the answer: it waits for the slower replicas too, within the timeout.
    void this.repairAfterRead(outstanding, partition, request, versionOptions, list.primaries);
    return merged;
  }

  /** Applies an object sent by a coordinator, a read repair or a hint delivery. */
  async applyReplica(partition: number, bucket: string, key: string, encoded: Uint8Array, sync: boolean, hintFor: string | undefined, conflictMode: ConflictMode): Promise<void> {
    const incoming = decodeObject(encoded);
    const versionOptions: VersionOptions = { conflictMode, maxSiblings: this.options.maxSiblings };
    // A complete object from elsewhere may replace corrupt bytes: they cannot be read anyway.
    await this.store.update(partition, bucket, key, (current) => (current === undefined ? incoming : this.mergeCounted(current, incoming, versionOptions)), {
      sync,
      extraOperations: this.hintOperations(hintFor, partition, bucket, key),
      replaceCorrupt: true,
    });
  }

  async readLocal(partition: number, bucket: string, key: string): Promise<VersionedObject | undefined> {
    return this.store.read(partition, bucket, key);
  }

  // ---- internals ----

  /**
   * Preference lists depend only on the ring, so they are computed once per ring version and
   * partition (at most Q entries) instead of on every request.
   */
  private preferenceListOf(ring: RingState, partition: number): PreferenceList {
    if (this.listCache.ring !== ring) this.listCache = { ring, lists: new Map() };
    let list = this.listCache.lists.get(partition);
    if (list === undefined) {
      list = preferenceList(ring.plan, partition, activeMembers(ring).map((m) => m.id));
      this.listCache.lists.set(partition, list);
    }
    return list;
  }

  /**
   * Merges and counts the siblings the cap dropped: a merge can push an object past maxSiblings
   * just as a write can, and a dropped sibling must never go unnoticed (found by the simulator).
   * The result can only have lost siblings to the cap when it sits at the cap, so only then is
   * the uncapped merge computed for comparison.
   */
  private readonly mergeCounted: MergeObjects = (a, b, versionOptions) => {
    const merged = this.mergeObjects(a, b, versionOptions);
    if (merged.siblings.length < versionOptions.maxSiblings) return merged;
    const uncapped = this.mergeObjects(a, b, { ...versionOptions, maxSiblings: Number.MAX_SAFE_INTEGER });
    const dropped = uncapped.siblings.length - merged.siblings.length;
    if (dropped > 0) this.metrics.siblingsDropped(dropped);
    return merged;
  };

  /**
   * The hint record written with a stand-in replica's copy. Its value is a stamp unique to this
   * write, so hint delivery can tell whether the hint it delivered was re-written meanwhile.
   */
  private hintOperations(hintFor: string | undefined, partition: number, bucket: string, key: string): BatchOperation[] {
    if (hintFor === undefined) return [];
    this.hintSequence++;
    const stamp = new TextEncoder().encode(`${this.actorId()}/${this.hintSequence}`);
    return [{ type: 'put', key: hintKey(hintFor, partition, bucket, key), value: stamp }];
  }

  private async forward(request: PutRequest, ring: RingState, targets: readonly ReplicaTarget[]): Promise<VersionedObject> {
    // Prefer primaries; a fallback coordinates only when no primary is reachable.
    const ordered = [...targets.filter((t) => t.hintFor === undefined), ...targets.filter((t) => t.hintFor !== undefined)];
    let lastError: unknown;
    for (const target of ordered) {
      const member = ring.members.find((m) => m.id === target.node);
      if (member === undefined) continue;
      try {
        this.metrics.forwarded();
        const { object } = await this.transport.call(
          member.peerUrl,
          'coordinate',
          {
            bucket: request.bucket,
            key: request.key,
            value: request.value.value,
            contentType: request.value.contentType,
            deleted: request.value.deleted,
            lastModifiedMs: request.value.lastModifiedMs,
            context: encodeContext(request.context),
            w: request.write.w,
            dw: request.write.dw,
            pw: request.write.pw,
            hops: (request.hops ?? 0) + 1,
          },
          this.options.replicaTimeoutMs * 2,
        );
        this.membership.recordReply(target.node);
        return decodeObject(object);
      } catch (error) {
        lastError = error;
        if (error instanceof PeerCallError && error.unreachable) {
          this.membership.recordFailure(target.node);
          continue;
        }
        throw error;
      }
    }
    throw new CoordinationError('QUORUM_UNAVAILABLE', `no replica of the key could coordinate the write: ${String((lastError as Error | undefined)?.message ?? 'none reachable')}`);
  }

  private async replicateTo(target: ReplicaTarget, body: { partition: number; bucket: string; key: string; object: Uint8Array; sync: boolean }): Promise<{ durable: boolean }> {
    const member = this.membership.member(target.node);
    if (member === undefined) throw new Error(`unknown member ${target.node}`);
    try {
      const result = await this.transport.call(member.peerUrl, 'replicate', { ...body, ...(target.hintFor === undefined ? {} : { hintFor: target.hintFor }) }, this.options.replicaTimeoutMs);
      this.membership.recordReply(target.node);
      return result;
    } catch (error) {
      if (error instanceof PeerCallError && error.unreachable) this.membership.recordFailure(target.node);
      throw error;
    }
  }

  private async readFrom(node: string, partition: number, bucket: string, key: string): Promise<ReadReply> {
    if (node === this.membership.selfId) return { node, object: await this.store.read(partition, bucket, key) };
    const member = this.membership.member(node);
    if (member === undefined) throw new Error(`unknown member ${node}`);
    try {
      const { object } = await this.transport.call(member.peerUrl, 'read', { partition, bucket, key }, this.options.replicaTimeoutMs);
      this.membership.recordReply(node);
      return { node, object: object === null ? undefined : decodeObject(object) };
    } catch (error) {
      if (error instanceof PeerCallError && error.unreachable) this.membership.recordFailure(node);
      throw error;
    }
  }

  /**
   * Replaces this node's corrupt copy of a key with the merge of the other replicas' copies.
   * Resolves to false when no other replica answered with a copy.
   */
  private async repairLocalCopy(partition: number, list: PreferenceList, bucket: string, key: string, versionOptions: VersionOptions): Promise<boolean> {
    const self = this.membership.selfId;
    const others = selectReadTargets(list, (id) => this.membership.isUp(id), false).filter((t) => t.node !== self);
    const settled = await Promise.allSettled(others.map((t) => this.readFrom(t.node, partition, bucket, key)));
    let merged: VersionedObject | undefined;
    for (const s of settled) {
      const object = s.status === 'fulfilled' ? s.value.object : undefined;
      if (object !== undefined) merged = merged === undefined ? object : this.mergeCounted(merged, object, versionOptions);
    }
    if (merged === undefined) return false;
    await this.applyReplica(partition, bucket, key, encodeObject(merged), false, undefined, versionOptions.conflictMode);
    return true;
  }

  private async repairAfterRead(outstanding: readonly Outstanding<ReadReply>[], partition: number, request: GetRequest, versionOptions: VersionOptions, primaries: readonly string[]): Promise<void> {
    const settled = await Promise.allSettled(outstanding.map((o) => o.promise));
    const replies = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const { merged, stale } = resolveRead(replies, versionOptions, this.mergeCounted);
    if (merged === undefined) return;
    // A replica whose copy failed its checksum did not answer, but it is as stale as one without
    // the key: the merged object replaces its bytes.
    const corrupt = settled.flatMap((s, i) => (s.status === 'rejected' && isCorruption(s.reason) ? [outstanding[i]!.target.node] : []));
    const repairable = [...stale, ...corrupt].filter((node) => primaries.includes(node));
    if (repairable.length === 0) return;
    const encoded = encodeObject(merged);
    const results = await Promise.allSettled(
      repairable.map((node) =>
        node === this.membership.selfId
          ? this.applyReplica(partition, request.bucket, request.key, encoded, false, undefined, request.conflictMode)
          : this.replicateTo({ node }, { partition, bucket: request.bucket, key: request.key, object: encoded, sync: false }),
      ),
    );
    this.metrics.readRepair(results.filter((r) => r.status === 'fulfilled').length);
  }
}

/** A replica read that failed because the stored copy is corrupt, here or on the peer. */
function isCorruption(error: unknown): boolean {
  return error instanceof CorruptObjectError || (error instanceof PeerCallError && error.code === 'STORAGE_CORRUPT');
}
