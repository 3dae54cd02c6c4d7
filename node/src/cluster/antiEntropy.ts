/**
 * Active anti-entropy (Dynamo section 4.7, with tictac trees instead of Merkle trees): replicas
 * that missed writes heal without anyone reading the keys.
 *
 * Every `intervalMs` this node takes the next partition it owns (round robin) and one other live
 * primary of it, and compares their trees: roots first; if they differ, branch hashes; then the
 * leaf hashes of the differing branches; then the keys and version digests of the differing
 * segments from both sides. Each key whose digest differs is read from both replicas, merged
 * with core merge, and the merged object goes to whichever side does not already contain it (the
 * same path as read repair: the peer's `replicate`, or the coordinator's applyReplica here).
 *
 * A tombstone past the reaper's grace period is not copied to a replica that has no copy of the
 * key (core/tombstones.ts worthCopyingToEmptyReplica): that replica most likely reaped it already.
 *
 * A copy that fails its checksum, on either side, counts as missing: the merge of what the other
 * side has replaces it (applyReplica and the peer's replicate overwrite corrupt bytes).
 *
 * Throttling: the node's background budget is asked before each exchange and each repaired key
 * (backgroundBudget.ts), one exchange at a time (the loop never overlaps itself), at most
 * `keysPerExchangeMax` keys repaired and about `bytesPerExchangeMax` bytes moved per exchange;
 * what is left is found again by the next exchange of that partition.
 */
import { merge, objectDescends, type VersionOptions } from '../core/dvv';
import { activeMembers } from '../core/ring';
import { worthCopyingToEmptyReplica } from '../core/tombstones';
import { branchHashes, differingHashes, differingKeys, differingSegments, leafHashes, rootHash, type KeyDifference, type TreeShape } from '../core/tictac';
import { CorruptObjectError, decodeObject, encodeObject } from '../storage/objectCodec';
import type { ObjectStore } from '../storage/objectStore';
import { PeerCallError, type PeerTransport } from '../transport/peerClient';
import { AE_KEYS_PER_CALL_MAX, AE_SEGMENTS_PER_CALL_MAX, PeerDecodeError, type AeKeysRequest, type AeKeysResponse, type AeTreeRequest, type AeTreeResponse, type PeerRequest, type PeerResponse } from '../transport/peerMessages';
import type { Coordinator } from './coordinator';
import { ALWAYS_ADMIT, type BackgroundAdmission } from './backgroundBudget';
import type { Membership } from './membership';
import { every, type Runtime } from './runtime';
import type { TreeStore } from './treeStore';

export interface AntiEntropyOptions {
  /** Milliseconds between exchanges; 0 disables the loop (this node still answers peers). */
  readonly intervalMs: number;
  readonly keysPerExchangeMax: number;
  readonly bytesPerExchangeMax: number;
  readonly timeoutMs: number;
  readonly maxSiblings: number;
  /**
   * The tombstone grace period of the reaper (core/tombstones.ts). A tombstone older than this is
   * not copied to a replica that holds nothing for the key: the reapers are removing it. Absent:
   * every difference is repaired (a node that reaps nothing).
   */
  readonly tombstoneGraceMs?: number;
  /** Asked before each exchange and each repaired key; absent: never wait. */
  readonly budget?: BackgroundAdmission;
}

export interface AntiEntropyMetrics {
  exchanged(partition: number, atMs: number): void;
  keysRepaired(count: number): void;
  bytesExchanged(count: number): void;
}

export interface ExchangeReport {
  readonly partition: number;
  readonly peer: string;
  readonly atMs: number;
  readonly differingSegments: number;
  readonly differingKeys: number;
  readonly keysRepaired: number;
  readonly bytes: number;
}

export interface AntiEntropySummary {
  readonly enabled: boolean;
  readonly intervalMs: number;
  readonly exchanges: number;
  readonly keysRepaired: number;
  readonly bytes: number;
  readonly treesBuilt: number;
  readonly lastExchange: ExchangeReport | null;
}

/** The peer methods a node serves for anti-entropy. */
export interface AntiEntropyPeer {
  aeTree(request: AeTreeRequest): Promise<AeTreeResponse>;
  aeKeys(request: AeKeysRequest): Promise<AeKeysResponse>;
}

/** Exchanges tried per peer by syncPartition in one call; more differences wait for the next. */
const SYNC_EXCHANGES_MAX = 4;

/** Fixed bytes counted per message on top of its payload (framing, names). */
const MESSAGE_OVERHEAD_BYTES = 64;

export class AntiEntropy implements AntiEntropyPeer {
  private stopLoop: () => void = () => undefined;
  private stopped = false;
  private inFlight: Promise<unknown> | undefined;
  private partitionTurn = 0;
  private peerTurn = 0;
  private exchanges = 0;
  private repairedTotal = 0;
  private bytesTotal = 0;
  private last: ExchangeReport | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly trees: TreeStore,
    private readonly coordinator: Coordinator,
    private readonly membership: Membership,
    private readonly transport: PeerTransport,
    private readonly runtime: Runtime,
    private readonly metrics: AntiEntropyMetrics,
    private readonly options: AntiEntropyOptions,
    private readonly onError: (what: string, error: unknown) => void,
  ) {}

  start(): void {
    if (this.options.intervalMs <= 0) return;
    this.stopLoop = every(
      this.runtime,
      this.options.intervalMs,
      async () => {
        const exchange = this.exchange();
        this.inFlight = exchange;
        try {
          await exchange;
        } finally {
          this.inFlight = undefined;
        }
      },
      (e) => this.onError('anti-entropy exchange', e),
    );
  }

  /** Stops the loop; an exchange in progress stops at its next key, and this waits for it. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopLoop();
    await this.inFlight?.catch(() => undefined);
  }

  summary(): AntiEntropySummary {
    return {
      enabled: this.options.intervalMs > 0,
      intervalMs: this.options.intervalMs,
      exchanges: this.exchanges,
      keysRepaired: this.repairedTotal,
      bytes: this.bytesTotal,
      treesBuilt: this.trees.builtCount(),
      lastExchange: this.last ?? null,
    };
  }

  /** One exchange with the next owned partition's next live co-owner; undefined when there is none. */
  async exchange(): Promise<ExchangeReport | undefined> {
    const ring = this.membership.ring();
    const self = this.membership.selfId;
    const active = new Set(activeMembers(ring).map((m) => m.id));
    const owned: number[] = [];
    ring.plan.owners.forEach((list, partition) => {
      if (list.includes(self)) owned.push(partition);
    });
    if (owned.length === 0) return undefined;
    await (this.options.budget ?? ALWAYS_ADMIT).admit('antiEntropy');
    const partition = owned[this.partitionTurn++ % owned.length]!;
    const peers = (ring.plan.owners[partition] ?? []).filter((id) => id !== self && active.has(id) && this.membership.isUp(id));
    if (peers.length === 0) return undefined;
    return this.exchangeWith(partition, peers[this.peerTurn++ % peers.length]!);
  }

  /** Compares and repairs one partition with one peer. */
  async exchangeWith(partition: number, peer: string): Promise<ExchangeReport> {
    return (await this.exchangeChecked(partition, peer)).report;
  }

  /**
   * One exchange, and whether it left the two copies in step: the trees were equal, or every
   * difference was listed and examined and none needed a repair (a tree drift, or an old
   * tombstone deliberately not copied to a replica without the key).
   */
  private async exchangeChecked(partition: number, peer: string): Promise<{ report: ExchangeReport; inStep: boolean }> {
    const member = this.membership.member(peer);
    if (member === undefined) throw new Error(`unknown member ${peer}`);
    const shape = this.trees.options.shape;
    const budget = { bytes: 0 };
    const call = this.peerCaller(peer, member.peerUrl, budget);
    const local = await this.trees.tree(partition);
    const top = await call('aeTree', { partition, ...shape, branches: [] });
    budget.bytes += top.branches.length + top.root.length;
    let segments: number[] = [];
    let differences: KeyDifference[] = [];
    let repaired = 0;
    let inStep = true;
    if (differingHashes(rootHash(local), top.root).length > 0) {
      const branches = differingHashes(branchHashes(local), top.branches);
      const deep = await call('aeTree', { partition, ...shape, branches });
      budget.bytes += deep.leaves.length;
      const allSegments = differingSegments(shape, branches, leafHashes(local, branches), deep.leaves);
      segments = allSegments.slice(0, AE_SEGMENTS_PER_CALL_MAX);
      const listed = await this.listDifferences(partition, segments, shape, call, budget);
      differences = listed.differences;
      const repair = await this.repairKeys(partition, differences, call, budget);
      repaired = repair.repaired;
      inStep = segments.length === allSegments.length && listed.complete && repair.examined === differences.length && repaired === 0;
    }
    const report: ExchangeReport = { partition, peer, atMs: this.runtime.nowMs(), differingSegments: segments.length, differingKeys: differences.length, keysRepaired: repaired, bytes: budget.bytes };
    this.exchanges++;
    this.repairedTotal += repaired;
    this.bytesTotal += budget.bytes;
    this.last = report;
    this.metrics.exchanged(partition, report.atMs);
    this.metrics.keysRepaired(repaired);
    this.metrics.bytesExchanged(budget.bytes);
    return { report, inStep };
  }

  /**
   * Exchanges the partition with each peer until an exchange finds the trees equal (at most
   * SYNC_EXCHANGES_MAX per peer): true when every peer is in step with this node's copy. Used
   * before an old owner drops a partition. A peer that is down, or still differing, gives false.
   */
  async syncPartition(partition: number, peers: readonly string[]): Promise<boolean> {
    for (const peer of peers) {
      if (this.stopped || !this.membership.isUp(peer)) return false;
      let inStep = false;
      for (let attempt = 0; attempt < SYNC_EXCHANGES_MAX && !inStep; attempt++) {
        inStep = (await this.exchangeChecked(partition, peer)).inStep;
      }
      if (!inStep) return false;
    }
    return true;
  }

  // ---- peer handlers ----

  async aeTree(request: AeTreeRequest): Promise<AeTreeResponse> {
    this.assertShape(request);
    const tree = await this.trees.tree(request.partition);
    return { root: rootHash(tree), branches: branchHashes(tree), leaves: leafHashes(tree, request.branches) };
  }

  async aeKeys(request: AeKeysRequest): Promise<AeKeysResponse> {
    this.assertShape(request);
    return this.trees.keysIn(request.partition, request.segments, request.keysMax);
  }

  // ---- internals ----

  private assertShape(request: TreeShape): void {
    const shape = this.trees.options.shape;
    if (request.branchCount !== shape.branchCount || request.leavesPerBranch !== shape.leavesPerBranch) {
      throw new PeerDecodeError(`tree shape ${request.branchCount}x${request.leavesPerBranch} differs from this node's ${shape.branchCount}x${shape.leavesPerBranch}`);
    }
  }

  /** The differing keys of the segments; `complete` is false when either side's listing was cut at keysMax. */
  private async listDifferences(partition: number, segments: number[], shape: TreeShape, call: PeerCaller, budget: { bytes: number }): Promise<{ differences: KeyDifference[]; complete: boolean }> {
    if (segments.length === 0) return { differences: [], complete: true };
    const keysMax = Math.min(AE_KEYS_PER_CALL_MAX, Math.max(1, this.options.keysPerExchangeMax * 4));
    const mine = await this.trees.keysIn(partition, segments, keysMax);
    const theirs = await call('aeKeys', { partition, ...shape, segments, keysMax });
    for (const k of theirs.keys) budget.bytes += k.bucket.length + k.key.length + k.digest.length;
    return { differences: differingKeys(mine.keys, theirs.keys), complete: !mine.truncated && !theirs.truncated };
  }

  /** Repairs differing keys in both directions, within the key and byte budgets; counts keys changed and keys looked at. */
  private async repairKeys(partition: number, differences: readonly KeyDifference[], call: PeerCaller, budget: { bytes: number }): Promise<{ repaired: number; examined: number }> {
    let repaired = 0;
    let examined = 0;
    for (const difference of differences) {
      if (this.stopped || repaired >= this.options.keysPerExchangeMax || budget.bytes >= this.options.bytesPerExchangeMax) break;
      examined++;
      const { bucket, key } = difference;
      const conflictMode = this.membership.ring().buckets[bucket]?.conflictMode ?? 'siblings';
      const versionOptions: VersionOptions = { conflictMode, maxSiblings: this.options.maxSiblings };
      await (this.options.budget ?? ALWAYS_ADMIT).admit('antiEntropy');
      const local = await corruptAsMissing(this.store.read(partition, bucket, key));
      const { object: remoteBytes } = (await corruptAsMissing(call('read', { partition, bucket, key }))) ?? { object: null };
      budget.bytes += remoteBytes?.length ?? 0;
      const remote = remoteBytes === null ? undefined : decodeObject(remoteBytes);
      const merged = local === undefined ? remote : remote === undefined ? local : merge(local, remote, versionOptions);
      if (merged === undefined) continue;
      const encoded = encodeObject(merged);
      const now = this.runtime.nowMs();
      const grace = this.options.tombstoneGraceMs;
      const toPeer = remote === undefined ? worthCopyingToEmptyReplica(merged, now, grace) : !objectDescends(remote, merged);
      const toSelf = local === undefined ? worthCopyingToEmptyReplica(merged, now, grace) : !objectDescends(local, merged);
      if (toPeer) {
        await call('replicate', { partition, bucket, key, object: encoded, sync: false });
        budget.bytes += encoded.length;
      }
      if (toSelf) await this.coordinator.applyReplica(partition, bucket, key, encoded, false, undefined, conflictMode);
      if (toPeer || toSelf) repaired++;
    }
    return { repaired, examined };
  }

  /** Calls to one peer that count bytes and feed liveness evidence to membership. */
  private peerCaller(peer: string, peerUrl: string, budget: { bytes: number }): PeerCaller {
    return async (method, request) => {
      budget.bytes += MESSAGE_OVERHEAD_BYTES;
      try {
        const response = await this.transport.call(peerUrl, method, request, this.options.timeoutMs);
        this.membership.recordReply(peer);
        return response;
      } catch (error) {
        if (error instanceof PeerCallError && error.unreachable) this.membership.recordFailure(peer);
        throw error;
      }
    };
  }
}

type PeerCaller = <M extends 'aeTree' | 'aeKeys' | 'read' | 'replicate'>(method: M, request: PeerRequest<M>) => Promise<PeerResponse<M>>;

/** The result of a replica read, or undefined when the stored copy failed its checksum (here or on the peer). */
async function corruptAsMissing<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof CorruptObjectError || (error instanceof PeerCallError && error.code === 'STORAGE_CORRUPT')) return undefined;
    throw error;
  }
}
