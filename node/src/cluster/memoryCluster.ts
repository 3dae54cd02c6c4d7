/**
 * A whole cluster in one process: every node runs the production coordinator, membership and
 * hint delivery over in-memory storage and an in-memory network, on one virtual clock. Used by
 * the cluster unit tests and as the base of the deterministic simulator.
 */
import type { ConflictMode } from '../core/version';
import { MemoryEngine } from '../storage/memory';
import { ObjectStore } from '../storage/objectStore';
import { MemoryNetwork } from '../transport/memoryNetwork';
import { AntiEntropy } from './antiEntropy';
import { Coordinator } from './coordinator';
import { Handoff } from './handoff';
import { HintDeliverer } from './hints';
import { Membership } from './membership';
import { buildPeerHandlers } from './peerHandlers';
import { TreeStore } from './treeStore';
import { VirtualRuntime } from './virtualRuntime';
import type { TreeShape } from '../core/tictac';

export interface SimNode {
  readonly id: string;
  readonly peerUrl: string;
  readonly engine: MemoryEngine;
  readonly store: ObjectStore;
  readonly membership: Membership;
  readonly coordinator: Coordinator;
  readonly hints: HintDeliverer;
  readonly trees: TreeStore;
  readonly antiEntropy: AntiEntropy;
  readonly handoff: Handoff;
  /** What the handoff metrics would count. */
  readonly handoffCounts: { bytes: number; keys: number };
  actorId: string;
  readRepairs: number;
  /** What the anti-entropy metrics would count. */
  readonly antiEntropyCounts: { exchanges: number; keysRepaired: number; bytes: number };
}

export interface MemoryClusterOptions {
  readonly nodes: number;
  readonly partitionCount: number;
  readonly replicationFactor: number;
  readonly seed: number;
  /** Milliseconds between anti-entropy exchanges on every node; 0 or absent: off. */
  readonly antiEntropyIntervalMs?: number;
  readonly antiEntropyKeysPerExchangeMax?: number;
  /** false: no hint delivery loop, so missed writes heal only by read repair or anti-entropy. */
  readonly hintDelivery?: boolean;
  /** true: joins and leaves stream partitions before the plan changes (cluster/handoff.ts). */
  readonly handoff?: boolean;
  /** false: a sender streams without first syncing with the other old owners (tests of the other paths). */
  readonly syncBeforeStream?: boolean;
  /** Handoff throttle; small values keep a transfer in flight across many clock steps. */
  readonly handoffBytesPerSecondMax?: number;
  readonly handoffBatchKeysMax?: number;
  /** Anti-entropy tree shape; absent: a small one that keeps the in-process tests quick. */
  readonly treeShape?: TreeShape;
}

/** Lets pending promise work and immediates run, so async work a timer started completes. */
export const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

export class MemoryCluster {
  readonly runtime: VirtualRuntime;
  readonly network = new MemoryNetwork();
  readonly nodes: SimNode[] = [];
  readonly errors: string[] = [];

  constructor(private readonly options: MemoryClusterOptions) {
    this.runtime = new VirtualRuntime(options.seed);
  }

  /** Starts every node and joins nodes 2..n to node 1, as the local-mode launcher does. */
  async start(): Promise<void> {
    for (let i = 1; i <= this.options.nodes; i++) this.nodes.push(await this.startNode(`n${i}`));
    for (const node of this.nodes.slice(1)) {
      await node.membership.join(this.nodes[0]!.peerUrl);
      // With handoff one change runs at a time: wait for each join to commit.
      if (this.options.handoff === true) await this.untilNoChangePending(60_000);
    }
    await this.advance(3000);
  }

  /** Runs virtual time until no node's ring has a pending change; false when `msMax` passed first. */
  async untilNoChangePending(msMax: number): Promise<boolean> {
    for (let waitedMs = 0; waitedMs < msMax; waitedMs += 250) {
      if (this.nodes.every((n) => n.membership.ring().pending === undefined)) return true;
      await this.advance(250);
    }
    return false;
  }

  /** Starts one more node and joins it through node 1. */
  async addNode(id: string): Promise<SimNode> {
    const node = await this.startNode(id);
    this.nodes.push(node);
    await node.membership.join(this.nodes[0]!.peerUrl);
    return node;
  }

  node(id: string): SimNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  async advance(ms: number): Promise<void> {
    await this.runtime.advanceBy(ms, settle);
  }

  conflictModeOf(node: SimNode, bucket: string): ConflictMode {
    return node.membership.ring().buckets[bucket]?.conflictMode ?? 'siblings';
  }

  private async startNode(id: string): Promise<SimNode> {
    const peerUrl = `http://${id}.peer`;
    const engine = new MemoryEngine();
    await engine.open();
    const store = new ObjectStore(engine, { maxLockWaiters: 1000 });
    const transport = this.network.transportFor(peerUrl);
    const onError = (what: string, error: unknown) => {
      this.errors.push(`${id} ${what}: ${(error as Error).message}`);
    };
    const membership = new Membership(
      engine,
      transport,
      this.runtime,
      {
        self: { id, clientUrl: `http://${id}.client`, peerUrl },
        partitionCount: this.options.partitionCount,
        replicationFactor: this.options.replicationFactor,
        gossipIntervalMs: 1000,
        peerTimeoutMs: 500,
        handoff: this.options.handoff === true,
      },
      onError,
    );
    const antiEntropyCounts = { exchanges: 0, keysRepaired: 0, bytes: 0 };
    const handoffCounts = { bytes: 0, keys: 0 };
    const node: SimNode = { id, peerUrl, engine, store, membership, actorId: `${id}.0`, readRepairs: 0, antiEntropyCounts, handoffCounts } as SimNode;
    const coordinator = new Coordinator(
      store,
      membership,
      transport,
      () => node.actorId,
      { readRepair: (n) => (node.readRepairs += n), siblingsDropped: () => undefined, forwarded: () => undefined },
      { replicaTimeoutMs: 500, forwardHopsMax: 1, maxSiblings: 100 },
    );
    let incarnation = 0;
    const hints = new HintDeliverer(
      engine,
      store,
      membership,
      transport,
      this.runtime,
      { delivered: () => undefined, backlog: () => undefined },
      { intervalMs: 1000, batchSize: 100, hintsPerSecondMax: 1000, timeoutMs: 500, backoffMaxMs: 8000 },
      onError,
      () => {
        node.actorId = `${id}.${++incarnation}`;
      },
    );
    // Small trees keep the in-process tests quick; the logic is the same for any shape.
    const trees = new TreeStore(store, { shape: this.options.treeShape ?? { branchCount: 8, leavesPerBranch: 16 }, scanPageSize: 64, keysPerPartitionMax: 1_000_000 });
    store.onObjectChanged = trees.observe;
    const antiEntropy = new AntiEntropy(
      store,
      trees,
      coordinator,
      membership,
      transport,
      this.runtime,
      {
        exchanged: () => antiEntropyCounts.exchanges++,
        keysRepaired: (n) => (antiEntropyCounts.keysRepaired += n),
        bytesExchanged: (n) => (antiEntropyCounts.bytes += n),
      },
      { intervalMs: this.options.antiEntropyIntervalMs ?? 0, keysPerExchangeMax: this.options.antiEntropyKeysPerExchangeMax ?? 1000, bytesPerExchangeMax: 16 << 20, timeoutMs: 500, maxSiblings: 100 },
      onError,
    );
    const handoff = new Handoff(
      engine,
      trees,
      coordinator,
      membership,
      transport,
      this.runtime,
      { handoffBytes: (n) => (handoffCounts.bytes += n), handoffKeys: (n) => (handoffCounts.keys += n), handoffPending: () => undefined },
      {
        intervalMs: 500,
        batchKeysMax: this.options.handoffBatchKeysMax ?? 100,
        batchBytesMax: 1 << 20,
        bytesPerSecondMax: this.options.handoffBytesPerSecondMax ?? 40 << 20,
        concurrencyMax: 2,
        timeoutMs: 500,
        dropGraceMs: 3000,
        // As production wires them (cluster/assembly.ts).
        syncBeforeDrop: (partition, owners) => antiEntropy.syncPartition(partition, owners),
        store,
        ...(this.options.syncBeforeStream === false ? {} : { syncBeforeStream: (partition: number, owner: string) => antiEntropy.syncPartition(partition, [owner]) }),
      },
      (bucket) => this.conflictModeOf(node, bucket),
      onError,
    );
    Object.assign(node, { coordinator, hints, trees, antiEntropy, handoff });
    this.network.register(peerUrl, buildPeerHandlers(coordinator, membership, (bucket) => this.conflictModeOf(node, bucket), antiEntropy, handoff));
    await membership.start();
    if (this.options.handoff === true) handoff.start();
    if (this.options.hintDelivery !== false) hints.start();
    antiEntropy.start();
    return node;
  }
}
