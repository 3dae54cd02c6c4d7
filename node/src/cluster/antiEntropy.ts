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
 * Throttling: one exchange at a time (the loop never overlaps itself), at most
 * `keysPerExchangeMax` keys repaired and about `bytesPerExchangeMax` bytes moved per exchange;
 * what is left is found again by the next exchange of that partition.
 */
import { merge, objectDescends, type VersionOptions } from '../core/dvv';
import { activeMembers } from '../core/ring';
import { branchHashes, differingHashes, differingKeys, differingSegments, leafHashes, rootHash, type KeyDifference, type TreeShape } from '../core/tictac';
import { decodeObject, encodeObject } from '../storage/objectCodec';
import type { ObjectStore } from '../storage/objectStore';
import { PeerCallError, type PeerTransport } from '../transport/peerClient';
import { AE_KEYS_PER_CALL_MAX, AE_SEGMENTS_PER_CALL_MAX, PeerDecodeError, type AeKeysRequest, type AeKeysResponse, type AeTreeRequest, type AeTreeResponse, type PeerRequest, type PeerResponse } from '../transport/peerMessages';
import type { Coordinator } from './coordinator';
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
    const partition = owned[this.partitionTurn++ % owned.length]!;
    const peers = (ring.plan.owners[partition] ?? []).filter((id) => id !== self && active.has(id) && this.membership.isUp(id));
    if (peers.length === 0) return undefined;
    return this.exchangeWith(partition, peers[this.peerTurn++ % peers.length]!);
  }

  /** Compares and repairs one partition with one peer. */
  async exchangeWith(partition: number, peer: string): Promise<ExchangeReport> {
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
    if (differingHashes(rootHash(local), top.root).length > 0) {
      const branches = differingHashes(branchHashes(local), top.branches);
      const deep = await call('aeTree', { partition, ...shape, branches });
      budget.bytes += deep.leaves.length;
      segments = differingSegments(shape, branches, leafHashes(local, branches), deep.leaves).slice(0, AE_SEGMENTS_PER_CALL_MAX);
      differences = await this.listDifferences(partition, segments, shape, call, budget);
      repaired = await this.repairKeys(partition, differences, call, budget);
    }
    const report: ExchangeReport = { partition, peer, atMs: this.runtime.nowMs(), differingSegments: segments.length, differingKeys: differences.length, keysRepaired: repaired, bytes: budget.bytes };
    this.exchanges++;
    this.repairedTotal += repaired;
    this.bytesTotal += budget.bytes;
    this.last = report;
    this.metrics.exchanged(partition, report.atMs);
    this.metrics.keysRepaired(repaired);
    this.metrics.bytesExchanged(budget.bytes);
    return report;
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

  private async listDifferences(partition: number, segments: number[], shape: TreeShape, call: PeerCaller, budget: { bytes: number }): Promise<KeyDifference[]> {
    if (segments.length === 0) return [];
    const keysMax = Math.min(AE_KEYS_PER_CALL_MAX, Math.max(1, this.options.keysPerExchangeMax * 4));
    const mine = await this.trees.keysIn(partition, segments, keysMax);
    const theirs = await call('aeKeys', { partition, ...shape, segments, keysMax });
    for (const k of theirs.keys) budget.bytes += k.bucket.length + k.key.length + k.digest.length;
    return differingKeys(mine.keys, theirs.keys);
  }

  /** Repairs differing keys in both directions, within the key and byte budgets; returns keys changed. */
  private async repairKeys(partition: number, differences: readonly KeyDifference[], call: PeerCaller, budget: { bytes: number }): Promise<number> {
    let repaired = 0;
    for (const difference of differences) {
      if (this.stopped || repaired >= this.options.keysPerExchangeMax || budget.bytes >= this.options.bytesPerExchangeMax) break;
      const { bucket, key } = difference;
      const conflictMode = this.membership.ring().buckets[bucket]?.conflictMode ?? 'siblings';
      const versionOptions: VersionOptions = { conflictMode, maxSiblings: this.options.maxSiblings };
      const local = await this.store.read(partition, bucket, key);
      const { object: remoteBytes } = await call('read', { partition, bucket, key });
      budget.bytes += remoteBytes?.length ?? 0;
      const remote = remoteBytes === null ? undefined : decodeObject(remoteBytes);
      const merged = local === undefined ? remote : remote === undefined ? local : merge(local, remote, versionOptions);
      if (merged === undefined) continue;
      const encoded = encodeObject(merged);
      const toPeer = remote === undefined || !objectDescends(remote, merged);
      const toSelf = local === undefined || !objectDescends(local, merged);
      if (toPeer) {
        await call('replicate', { partition, bucket, key, object: encoded, sync: false });
        budget.bytes += encoded.length;
      }
      if (toSelf) await this.coordinator.applyReplica(partition, bucket, key, encoded, false, undefined, conflictMode);
      if (toPeer || toSelf) repaired++;
    }
    return repaired;
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
