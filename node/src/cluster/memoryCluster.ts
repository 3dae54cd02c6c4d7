/**
 * A whole cluster in one process: every node runs the production coordinator, membership and
 * hint delivery over in-memory storage and an in-memory network, on one virtual clock. Used by
 * the cluster unit tests and as the base of the deterministic simulator.
 */
import type { ConflictMode } from '../core/version';
import { MemoryEngine } from '../storage/memory';
import { ObjectStore } from '../storage/objectStore';
import { MemoryNetwork } from '../transport/memoryNetwork';
import { Coordinator } from './coordinator';
import { HintDeliverer } from './hints';
import { Membership } from './membership';
import { buildPeerHandlers } from './peerHandlers';
import { VirtualRuntime } from './virtualRuntime';

export interface SimNode {
  readonly id: string;
  readonly peerUrl: string;
  readonly engine: MemoryEngine;
  readonly store: ObjectStore;
  readonly membership: Membership;
  readonly coordinator: Coordinator;
  readonly hints: HintDeliverer;
  actorId: string;
  readRepairs: number;
}

export interface MemoryClusterOptions {
  readonly nodes: number;
  readonly partitionCount: number;
  readonly replicationFactor: number;
  readonly seed: number;
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
    for (const node of this.nodes.slice(1)) await node.membership.join(this.nodes[0]!.peerUrl);
    await this.advance(3000);
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
      { self: { id, clientUrl: `http://${id}.client`, peerUrl }, partitionCount: this.options.partitionCount, replicationFactor: this.options.replicationFactor, gossipIntervalMs: 1000, peerTimeoutMs: 500 },
      onError,
    );
    const node: SimNode = { id, peerUrl, engine, store, membership, actorId: `${id}.0`, readRepairs: 0 } as SimNode;
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
    Object.assign(node, { coordinator, hints });
    this.network.register(peerUrl, buildPeerHandlers(coordinator, membership, (bucket) => this.conflictModeOf(node, bucket)));
    await membership.start();
    hints.start();
    return node;
  }
}
