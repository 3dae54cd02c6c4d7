/**
 * A whole cluster on one virtual clock for the simulator: every node runs the production
 * Membership, Coordinator and HintDeliverer over a crashable in-memory disk (simDisk.ts), talks
 * over the simulated network (simNetwork.ts), and sees the clock through its own skew.
 *
 * A crash kills the process: its timers stop firing, its network endpoint and its disk handle
 * die, and unsynced writes may be lost. A restart builds a new process over what the disk kept,
 * with a new actor id for version dots, as a production start does.
 *
 * Extension point (issue 4, data movement): `addNode` and a `leave` fault belong here once
 * partitions can move; a join today would leave new owners without the data they own.
 */
import { Coordinator, type MergeObjects } from '../../node/src/cluster/coordinator';
import { HintDeliverer } from '../../node/src/cluster/hints';
import { Membership } from '../../node/src/cluster/membership';
import { buildPeerHandlers } from '../../node/src/cluster/peerHandlers';
import type { Runtime } from '../../node/src/cluster/runtime';
import { VirtualRuntime } from '../../node/src/cluster/virtualRuntime';
import type { ConflictMode } from '../../node/src/core/version';
import type { StorageEngine } from '../../node/src/storage/engine';
import { allHintsRange } from '../../node/src/storage/keys';
import { ObjectStore } from '../../node/src/storage/objectStore';
import { Prng } from './prng';
import { SimDisk } from './simDisk';
import { SimNetwork, type NetworkFaults, type TraceSink } from './simNetwork';

export interface SimClusterOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly partitionCount: number;
  readonly replicationFactor: number;
  readonly maxSiblings: number;
  readonly faults: NetworkFaults;
  /** Each node's clock is off by up to this much either way. */
  readonly clockSkewMsMax: number;
  /** Swaps in another merge (the broken-merge test only). */
  readonly mergeObjects?: MergeObjects;
}

/** Timeouts and intervals as a small production configuration would set them. */
export const SIM_TIMING = {
  gossipIntervalMs: 1000,
  peerTimeoutMs: 500,
  replicaTimeoutMs: 500,
  hintIntervalMs: 1000,
  hintTimeoutMs: 500,
  hintBackoffMaxMs: 8000,
} as const;

/** One running process of a node. */
export interface NodeProcess {
  readonly incarnation: number;
  readonly runtime: Runtime;
  readonly engine: StorageEngine;
  readonly store: ObjectStore;
  readonly membership: Membership;
  readonly coordinator: Coordinator;
  readonly hints: HintDeliverer;
  actorId: string;
}

export interface SimNodeSlot {
  readonly id: string;
  readonly peerUrl: string;
  readonly disk: SimDisk;
  skewMs: number;
  /** Every actor id this node ever used had a distinct sequence number (persisted in production). */
  actorSeq: number;
  incarnations: number;
  process: NodeProcess | undefined;
  /** Set while a crash rewrites the disk; a restart waits for it. */
  crashing: Promise<void> | undefined;
}

export interface ClusterCounters {
  siblingsDropped: number;
  readRepairs: number;
  forwarded: number;
  hintsDelivered: number;
  crashes: number;
  restarts: number;
}

/** Drains promise work a timer started; nothing in a simulation waits on real I/O. */
export const settleOnce = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

export class SimCluster {
  readonly runtime: VirtualRuntime;
  readonly network: SimNetwork;
  readonly nodes: SimNodeSlot[] = [];
  readonly counters: ClusterCounters = { siblingsDropped: 0, readRepairs: 0, forwarded: 0, hintsDelivered: 0, crashes: 0, restarts: 0 };
  /** Errors the background loops reported, as "node what: message". */
  readonly errors: string[] = [];
  private readonly faultPrng: Prng;

  constructor(
    readonly options: SimClusterOptions,
    trace: TraceSink,
  ) {
    this.runtime = new VirtualRuntime(Prng.derive(options.seed, 'runtime').int(0, 2 ** 31));
    this.network = new SimNetwork(this.runtime, Prng.derive(options.seed, 'network'), options.faults, trace);
    this.faultPrng = Prng.derive(options.seed, 'disk');
    const skew = Prng.derive(options.seed, 'skew');
    for (let i = 1; i <= options.nodes; i++) {
      const id = `n${i}`;
      const peerUrl = `http://${id}.peer`;
      this.network.addHost(peerUrl, id);
      this.nodes.push({ id, peerUrl, disk: new SimDisk(), skewMs: skew.int(-options.clockSkewMsMax, options.clockSkewMsMax), actorSeq: 0, incarnations: 0, process: undefined, crashing: undefined });
    }
  }

  /** Starts every node and joins the others to n1, as the local-mode launcher does. */
  async start(): Promise<void> {
    for (const slot of this.nodes) {
      await slot.disk.format();
      await this.boot(slot);
    }
    const seedUrl = this.nodes[0]!.peerUrl;
    for (const slot of this.nodes.slice(1)) {
      const joined = slot.process!.membership.join(seedUrl);
      await this.runUntilSettled(joined);
    }
    await this.advanceBy(3000);
  }

  slot(id: string): SimNodeSlot {
    const slot = this.nodes.find((n) => n.id === id);
    if (slot === undefined) throw new Error(`no node ${id}`);
    return slot;
  }

  running(): SimNodeSlot[] {
    return this.nodes.filter((n) => n.process !== undefined);
  }

  /** Kills the node's process at once; part of its unsynced writes are lost. */
  async crash(id: string): Promise<void> {
    const slot = this.slot(id);
    const process = slot.process;
    if (process === undefined) return;
    slot.process = undefined;
    process.membership.stop();
    process.hints.stop();
    this.network.crash(slot.peerUrl);
    this.counters.crashes++;
    slot.crashing = slot.disk.crash(this.faultPrng);
    await slot.crashing;
    slot.crashing = undefined;
  }

  /** Starts a new process over the node's surviving disk, with a new actor id and maybe a stepped clock. */
  async restart(id: string, newSkewMs?: number): Promise<void> {
    const slot = this.slot(id);
    if (slot.crashing !== undefined) await slot.crashing;
    if (slot.process !== undefined) return;
    if (newSkewMs !== undefined) slot.skewMs = newSkewMs;
    this.counters.restarts++;
    await this.boot(slot);
  }

  /** Stops every node's background loops (the end of a run). */
  stop(): void {
    for (const slot of this.nodes) {
      slot.process?.membership.stop();
      slot.process?.hints.stop();
    }
  }

  async advanceTo(untilMs: number): Promise<void> {
    await this.runtime.advanceTo(untilMs, settleOnce);
  }

  async advanceBy(deltaMs: number): Promise<void> {
    await this.advanceTo(this.runtime.nowMs() + deltaMs);
  }

  /** Hints waiting on every node, counted in storage (what a restart would find). */
  async hintBacklog(): Promise<number> {
    let total = 0;
    for (const slot of this.nodes) total += await slot.disk.view().count(allHintsRange());
    return total;
  }

  /** Every running node judges every other running node up. */
  allSeeEachOther(): boolean {
    const running = this.running();
    return running.every((a) => running.every((b) => a.process!.membership.isUp(b.id)));
  }

  conflictModeOf(process: NodeProcess, bucket: string): ConflictMode {
    return process.membership.ring().buckets[bucket]?.conflictMode ?? 'siblings';
  }

  /** Advances virtual time in small steps until `promise` settles (bounded). */
  async runUntilSettled<T>(promise: Promise<T>, stepMs = 10, timeMsMax = 60_000): Promise<T> {
    let done = false;
    const watched = promise.finally(() => {
      done = true;
    });
    watched.catch(() => undefined);
    const deadline = this.runtime.nowMs() + timeMsMax;
    await settleOnce();
    while (!done && this.runtime.nowMs() < deadline) await this.advanceBy(stepMs);
    if (!done) throw new Error(`operation did not settle within ${timeMsMax} virtual ms`);
    return watched;
  }

  private async boot(slot: SimNodeSlot): Promise<void> {
    const incarnation = ++slot.incarnations;
    const alive = () => slot.process?.incarnation === incarnation;
    const runtime = processRuntime(this.runtime, () => slot.skewMs, alive);
    const engine = slot.disk.open();
    const store = new ObjectStore(engine, { maxLockWaiters: 1000 });
    const transport = this.network.transportFor(slot.peerUrl);
    const onError = (what: string, error: unknown) => {
      if (alive()) this.errors.push(`${slot.id} ${what}: ${(error as Error).message}`);
    };
    const membership = new Membership(
      engine,
      transport,
      runtime,
      {
        self: { id: slot.id, clientUrl: `http://${slot.id}.client`, peerUrl: slot.peerUrl },
        partitionCount: this.options.partitionCount,
        replicationFactor: this.options.replicationFactor,
        gossipIntervalMs: SIM_TIMING.gossipIntervalMs,
        peerTimeoutMs: SIM_TIMING.peerTimeoutMs,
      },
      onError,
    );
    const process = { incarnation, runtime, engine, store, membership, actorId: `${slot.id}.${++slot.actorSeq}` } as NodeProcess;
    const counters = this.counters;
    const coordinator = new Coordinator(
      store,
      membership,
      transport,
      () => process.actorId,
      { readRepair: (n) => (counters.readRepairs += n), siblingsDropped: (n) => (counters.siblingsDropped += n), forwarded: () => counters.forwarded++ },
      { replicaTimeoutMs: SIM_TIMING.replicaTimeoutMs, forwardHopsMax: 1, maxSiblings: this.options.maxSiblings, ...(this.options.mergeObjects ? { mergeObjects: this.options.mergeObjects } : {}) },
    );
    const hints = new HintDeliverer(
      engine,
      store,
      membership,
      transport,
      runtime,
      { delivered: (n) => (counters.hintsDelivered += n), backlog: () => undefined },
      { intervalMs: SIM_TIMING.hintIntervalMs, batchSize: 100, hintsPerSecondMax: 1000, timeoutMs: SIM_TIMING.hintTimeoutMs, backoffMaxMs: SIM_TIMING.hintBackoffMaxMs },
      onError,
      () => {
        process.actorId = `${slot.id}.${++slot.actorSeq}`;
      },
    );
    Object.assign(process, { coordinator, hints });
    slot.process = process;
    this.network.register(slot.peerUrl, buildPeerHandlers(coordinator, membership, (bucket) => this.conflictModeOf(process, bucket)));
    await membership.start();
    hints.start();
  }
}

/**
 * A process's view of time: the shared virtual clock plus the node's skew, and timers that die
 * with the process.
 */
function processRuntime(base: VirtualRuntime, skewMs: () => number, alive: () => boolean): Runtime {
  return {
    nowMs: () => base.nowMs() + skewMs(),
    random: () => base.random(),
    schedule: (task, delayMs) =>
      base.schedule(() => {
        if (alive()) task();
      }, delayMs),
  };
}
