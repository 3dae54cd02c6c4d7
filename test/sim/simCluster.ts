/**
 * A whole cluster on one virtual clock for the simulator: every node is assembled by the
 * production cluster/assembly.ts (membership, coordinator, hints, anti-entropy, handoff, reaper,
 * peer handlers) over a crashable in-memory disk (simDisk.ts), talks over the simulated network
 * (simNetwork.ts), and sees the clock through its own skew.
 *
 * A crash kills the process: its timers stop firing, its network endpoint and its disk handle
 * die, and unsynced writes may be lost. A restart builds a new process over what the disk kept,
 * with a new actor id for version dots, as a production start does.
 *
 * Membership changes: the cluster has spare slots that start outside the ring. `join` boots a
 * spare (on an empty disk) and asks a member to admit it; `leave` asks a member to remove one.
 * Both stream partitions through the real handoff before the plan moves on. A node that has
 * left is stopped and its disk wiped, after which its slot may join again as a new life.
 */
import { assembleNode, type AssembledNode, type ClusterLoopMetrics, type ClusterSettings } from '../../node/src/cluster/assembly';
import type { Coordinator, MergeObjects } from '../../node/src/cluster/coordinator';
import type { HintDeliverer } from '../../node/src/cluster/hints';
import type { Membership } from '../../node/src/cluster/membership';
import type { Runtime } from '../../node/src/cluster/runtime';
import { VirtualRuntime } from '../../node/src/cluster/virtualRuntime';
import { activeMembers, findMember } from '../../node/src/core/ring';
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
  /** Slots outside the ring at the start, which membership changes may join. */
  readonly spares: number;
  readonly partitionCount: number;
  readonly replicationFactor: number;
  readonly maxSiblings: number;
  readonly faults: NetworkFaults;
  /** Each node's clock is off by up to this much either way. */
  readonly clockSkewMsMax: number;
  /** Milliseconds between anti-entropy exchanges; 0: off. */
  readonly antiEntropyIntervalMs: number;
  /** Handoff batch size and throttle; small values keep a transfer in flight across faults. */
  readonly handoffBatchKeysMax: number;
  readonly handoffBytesPerSecondMax: number;
  /** Swaps in another merge (the broken-merge test only). */
  readonly mergeObjects?: MergeObjects;
}

/** Timeouts and intervals as a small production configuration would set them. */
export const SIM_TIMING = {
  gossipIntervalMs: 1000,
  replicaTimeoutMs: 500,
} as const;

function simSettings(options: SimClusterOptions): ClusterSettings {
  return {
    partitionCount: options.partitionCount,
    replicationFactor: options.replicationFactor,
    gossipIntervalMs: SIM_TIMING.gossipIntervalMs,
    replicaTimeoutMs: SIM_TIMING.replicaTimeoutMs,
    maxSiblings: options.maxSiblings,
    hints: { intervalMs: 1000, batchSize: 100, hintsPerSecondMax: 1000, backoffMaxMs: 8000 },
    // A small tree: the logic is the same for any shape, and the simulated data is small.
    trees: { shape: { branchCount: 8, leavesPerBranch: 16 }, scanPageSize: 64, keysPerPartitionMax: 1_000_000 },
    antiEntropy: { intervalMs: options.antiEntropyIntervalMs, keysPerExchangeMax: 1000, bytesPerExchangeMax: 16 << 20 },
    handoff: {
      enabled: true,
      intervalMs: 500,
      batchKeysMax: options.handoffBatchKeysMax,
      batchBytesMax: 1 << 20,
      bytesPerSecondMax: options.handoffBytesPerSecondMax,
      concurrencyMax: 2,
    },
    // Reaping is off: a run is far shorter than any grace period a deployment would choose.
    tombstones: { graceMs: 3_600_000, reapIntervalMs: 0, keysPerRoundMax: 100, scanKeysPerRoundMax: 1000 },
  };
}

/** One running process of a node. */
export interface NodeProcess {
  readonly incarnation: number;
  readonly runtime: Runtime;
  readonly engine: StorageEngine;
  readonly store: ObjectStore;
  readonly node: AssembledNode;
  readonly membership: Membership;
  readonly coordinator: Coordinator;
  readonly hints: HintDeliverer;
}

/**
 * spare: outside the ring; joining: booted and asking to join; member: in the ring (its join may
 * still stream, or it may be leaving); left: handed everything off and shut down.
 */
export type SlotRole = 'spare' | 'joining' | 'member' | 'left';

export interface SimNodeSlot {
  readonly id: string;
  readonly peerUrl: string;
  readonly disk: SimDisk;
  role: SlotRole;
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
  joins: number;
  leaves: number;
  handoffKeys: number;
  antiEntropyKeysRepaired: number;
}

/** An operator retries a join about once a second, for longer than any run's heal phase. */
const JOIN_ATTEMPTS_MAX = 300;
const JOIN_RETRY_MS = 1000;

/** Drains promise work a timer started; nothing in a simulation waits on real I/O. */
export const settleOnce = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

export class SimCluster {
  readonly runtime: VirtualRuntime;
  readonly network: SimNetwork;
  readonly nodes: SimNodeSlot[] = [];
  readonly counters: ClusterCounters = { siblingsDropped: 0, readRepairs: 0, forwarded: 0, hintsDelivered: 0, crashes: 0, restarts: 0, joins: 0, leaves: 0, handoffKeys: 0, antiEntropyKeysRepaired: 0 };
  /** Errors the background loops reported, as "node what: message". */
  readonly errors: string[] = [];
  private readonly faultPrng: Prng;
  private readonly settings: ClusterSettings;

  constructor(
    readonly options: SimClusterOptions,
    trace: TraceSink,
  ) {
    this.runtime = new VirtualRuntime(Prng.derive(options.seed, 'runtime').int(0, 2 ** 31));
    this.network = new SimNetwork(this.runtime, Prng.derive(options.seed, 'network'), options.faults, trace);
    this.faultPrng = Prng.derive(options.seed, 'disk');
    this.settings = simSettings(options);
    const skew = Prng.derive(options.seed, 'skew');
    for (let i = 1; i <= options.nodes + options.spares; i++) {
      const id = `n${i}`;
      const peerUrl = `http://${id}.peer`;
      this.network.addHost(peerUrl, id);
      const role: SlotRole = i <= options.nodes ? 'member' : 'spare';
      this.nodes.push({ id, peerUrl, disk: new SimDisk(), role, skewMs: skew.int(-options.clockSkewMsMax, options.clockSkewMsMax), actorSeq: 0, incarnations: 0, process: undefined, crashing: undefined });
    }
  }

  /** Starts the first `nodes` nodes and joins the others to n1 one at a time, as the local-mode launcher does. */
  async start(): Promise<void> {
    const members = this.members();
    for (const slot of members) {
      await slot.disk.format();
      await this.boot(slot);
    }
    for (const slot of this.nodes) if (slot.role === 'spare') await slot.disk.format();
    const seedUrl = members[0]!.peerUrl;
    for (const slot of members.slice(1)) {
      const joined = slot.process!.membership.join(seedUrl, { waitMs: 60_000 });
      await this.runUntilSettled(joined, 10, 120_000);
    }
    const settled = this.untilNoChangePending();
    await this.runUntilSettled(settled, 10, 120_000);
    await this.advanceBy(3000);
  }

  slot(id: string): SimNodeSlot {
    const slot = this.nodes.find((n) => n.id === id);
    if (slot === undefined) throw new Error(`no node ${id}`);
    return slot;
  }

  /** Slots in the ring from the simulation's point of view (joined and not yet left). */
  members(): SimNodeSlot[] {
    return this.nodes.filter((n) => n.role === 'member');
  }

  /** Slots a client may send requests to: members and nodes that left (a client's stale list). */
  reachable(): SimNodeSlot[] {
    return this.nodes.filter((n) => n.role === 'member' || n.role === 'left');
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
    // Timers of a dead process never fire (processRuntime); stopping the loops is tidiness.
    void process.node.stop().catch(() => undefined);
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
    if (slot.process !== undefined || slot.role === 'spare' || slot.role === 'left') return;
    if (newSkewMs !== undefined) slot.skewMs = newSkewMs;
    this.counters.restarts++;
    await this.boot(slot);
  }

  /**
   * Boots a spare (or a node that left) on an empty disk and asks a running member to let it
   * join, again and again as an operator would, until the node holds a ring it belongs to. An
   * attempt fails when another change is pending or the answer is lost; a lost answer is why a
   * repeated join must be harmless (core/transition.ts beginJoin). `pickVia` chooses the member
   * each attempt goes through. Resolves with whether the node joined.
   */
  async join(id: string, pickVia: (candidates: readonly SimNodeSlot[]) => SimNodeSlot): Promise<boolean> {
    const slot = this.slot(id);
    if ((slot.role !== 'spare' && slot.role !== 'left') || slot.process !== undefined) return false;
    slot.role = 'joining';
    await slot.disk.wipe();
    await this.boot(slot);
    for (let attempt = 0; attempt < JOIN_ATTEMPTS_MAX; attempt++) {
      // Re-read each time: a crash replaces the process (boot() set it, which the compiler cannot see).
      const process = slot.process as NodeProcess | undefined;
      if (process !== undefined) {
        // A crash right after the node adopted the ring leaves it in the cluster already.
        if (activeMembers(process.membership.ring()).some((m) => m.id !== slot.id)) break;
        const candidates = this.running().filter((s) => s.role === 'member');
        if (candidates.length > 0) {
          try {
            await process.membership.join(pickVia(candidates).peerUrl);
            break;
          } catch {
            // Refused or unanswered: try again after a pause.
          }
        }
      }
      await new Promise<void>((resolve) => this.runtime.schedule(resolve, JOIN_RETRY_MS));
      if (attempt === JOIN_ATTEMPTS_MAX - 1) return false;
    }
    slot.role = 'member';
    this.counters.joins++;
    return true;
  }

  /** Asks `via` (a running member) to remove `id` from the ring; the handoff then streams its partitions away. */
  async leave(id: string, via: string): Promise<boolean> {
    const process = this.slot(via).process;
    if (process === undefined) return false;
    try {
      await process.membership.leave(id);
    } catch {
      return false;
    }
    this.counters.leaves++;
    return true;
  }

  /**
   * Slots whose node every running member's ring shows as left, and which hold no hints, are
   * shut down: the operator removes a node that finished leaving once it delivered its hints (a
   * leaving node still coordinates writes until it learns it left, and may take hints for them).
   * The slot may join again later, on a wiped disk.
   */
  async retireLeftNodes(): Promise<void> {
    const rings = this.running().map((r) => r.process!.membership.ring());
    for (const slot of this.members()) {
      const leftEverywhere = rings.length > 0 && rings.every((ring) => ring.members.some((m) => m.id === slot.id && m.state === 'left'));
      if (!leftEverywhere || (await slot.disk.view().count(allHintsRange())) > 0) continue;
      slot.role = 'left';
      if (slot.process !== undefined) await this.stopProcess(slot);
    }
  }

  /** Stops every node's background loops (the end of a run). */
  stop(): void {
    for (const slot of this.nodes) void slot.process?.node.stop().catch(() => undefined);
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

  /** Every running member judges every other running member up. */
  allSeeEachOther(): boolean {
    const running = this.running().filter((s) => s.role === 'member');
    return running.every((a) => running.every((b) => a.process!.membership.isUp(b.id)));
  }

  /** No join is under way, no running node's ring has a change pending, and all agree on the ring version. */
  noChangePending(): boolean {
    if (this.nodes.some((s) => s.role === 'joining')) return false;
    const rings = this.running().filter((s) => s.role === 'member').map((s) => s.process!.membership.ring());
    return rings.every((r) => r.pending === undefined && r.version === rings[0]!.version);
  }

  /** Resolves once no change is pending anywhere (polled on the virtual clock; callers bound it). */
  async untilNoChangePending(): Promise<void> {
    while (!this.noChangePending()) await new Promise<void>((resolve) => this.runtime.schedule(resolve, 250));
  }

  /** The ring of the first running member (for checks after quiescence, when all rings agree). */
  settledRing() {
    const slot = this.running().find((s) => s.role === 'member');
    if (slot === undefined) throw new Error('no member is running');
    return slot.process!.membership.ring();
  }

  /** Ids of the members the settled ring counts as active, which must match the simulation's own view. */
  activeMemberIds(): string[] {
    return activeMembers(this.settledRing()).map((m) => m.id);
  }

  isRingMember(id: string): boolean {
    return findMember(this.settledRing(), id) !== undefined;
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

  /** A clean shutdown of one process (a node the operator removes); no unsynced write is lost. */
  private async stopProcess(slot: SimNodeSlot): Promise<void> {
    const process = slot.process;
    if (process === undefined) return;
    slot.process = undefined;
    void process.node.stop().catch(() => undefined);
    this.network.crash(slot.peerUrl);
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
    const node = assembleNode({
      self: { id: slot.id, clientUrl: `http://${slot.id}.client`, peerUrl: slot.peerUrl },
      engine,
      store,
      transport,
      runtime,
      settings: this.settings,
      metrics: this.loopMetrics(),
      reaperMetrics: { tombstonesReaped: () => undefined, tombstonesPending: () => undefined },
      newActorId: () => `${slot.id}.${++slot.actorSeq}`,
      onError,
      ...(this.options.mergeObjects ? { mergeObjects: this.options.mergeObjects } : {}),
    });
    slot.process = { incarnation, runtime, engine, store, node, membership: node.membership, coordinator: node.coordinator, hints: node.hints };
    this.network.register(slot.peerUrl, node.handlers);
    await node.startMembership();
    node.startLoops();
  }

  private loopMetrics(): ClusterLoopMetrics {
    const counters = this.counters;
    return {
      readRepair: (n) => (counters.readRepairs += n),
      siblingsDropped: (n) => (counters.siblingsDropped += n),
      forwarded: () => counters.forwarded++,
      delivered: (n) => (counters.hintsDelivered += n),
      backlog: () => undefined,
      exchanged: () => undefined,
      keysRepaired: (n) => (counters.antiEntropyKeysRepaired += n),
      bytesExchanged: () => undefined,
      handoffBytes: () => undefined,
      handoffKeys: (n) => (counters.handoffKeys += n),
      handoffPending: () => undefined,
    };
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
