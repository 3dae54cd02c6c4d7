/**
 * One simulated run, fully determined by its parameters: build a cluster, run the workload
 * under a seeded fault schedule, heal, wait for quiescence, read every key once with r=N (read
 * repair), and check. The same parameters replay the same run exactly; the trace hash (every
 * delivered message plus every node's final storage) proves it.
 */
import { createHash } from 'node:crypto';
import type { MergeObjects } from '../../node/src/cluster/coordinator';
import { merge, objectDescends } from '../../node/src/core/dvv';
import { unpackMessage } from '../../node/src/transport/peerMessages';
import { decodeObject } from '../../node/src/storage/objectCodec';
import { checkCluster, type CheckStats } from './checker';
import { Prng } from './prng';
import { SimCluster } from './simCluster';
import { CALM_NETWORK, type NetworkFaults, type NetworkStats } from './simNetwork';
import { BUCKET, describe, History, Workload, type WorkloadOptions } from './workload';

export interface SimParams {
  readonly seed: number;
  /** Upper bound of the run's operation count; the seed picks the count between ~1/3 of it and it. */
  readonly opsMax: number;
  /** Switches on a merge that drops a sibling of two concurrent objects (the checker's own test). */
  readonly brokenMerge?: boolean;
  /** Receives a line per event (messages, client operations, faults) when a run is explained. */
  readonly log?: (line: string) => void;
}

export interface SimConfig {
  readonly nodes: number;
  /** Slots outside the ring at the start, for joins. */
  readonly spares: number;
  /** Joins and leaves scheduled during the workload (one change runs at a time; others are refused). */
  readonly membershipEvents: number;
  readonly antiEntropyIntervalMs: number;
  readonly handoffBatchKeysMax: number;
  readonly handoffBytesPerSecondMax: number;
  readonly partitionCount: number;
  readonly replicationFactor: number;
  readonly maxSiblings: number;
  readonly clockSkewMsMax: number;
  readonly faults: NetworkFaults;
  readonly faultEvents: number;
  readonly workload: WorkloadOptions;
}

export interface SimStats extends CheckStats {
  operations: number;
  operationsOk: number;
  crashes: number;
  partitions: number;
  virtualMs: number;
  network: NetworkStats;
  unsyncedLost: number;
  hintsDelivered: number;
  readRepairs: number;
  siblingsDropped: number;
  joins: number;
  leaves: number;
  handoffKeys: number;
  antiEntropyKeysRepaired: number;
}

export interface SimResult {
  readonly seed: number;
  readonly config: SimConfig;
  readonly violations: string[];
  readonly stats: SimStats;
  readonly traceHash: string;
  readonly replay: string;
  /** What the nodes' background loops (gossip, hint delivery) reported as errors. */
  readonly backgroundErrors: readonly string[];
}

/** Bounds of the phases, in virtual milliseconds. */
const WORKLOAD_TIME_MS_MAX = 600_000;
const QUIESCENCE_TIME_MS_MAX = 120_000;
const QUIESCENCE_STEP_MS = 500;
const QUIESCENCE_TIME_MS_MIN = 3000;
const READ_REPAIR_SETTLE_MS = 3000;
const FINAL_READ_ATTEMPTS = 3;
/**
 * Errors of the background loops that faults cause: timeouts, refusals, a dead process, and
 * gossip with a node whose join the ring took before the node itself heard the answer (it still
 * holds its own one-node ring; a joiner that never learns is caught by the quiescence check), and
 * handoff calls that reach a node whose ring has not yet heard of the change (the sender retries;
 * a transfer that never finishes is caught by the quiescence check too).
 */
const EXPECTED_BACKGROUND_ERROR = /timed out after|refused the connection|is not running|belongs to a different cluster|retry later|is not pending for|are down/;

/** The seed chooses the cluster, the faults and the workload; opsMax only bounds the size. */
export function configFor(params: SimParams): SimConfig {
  const p = Prng.derive(params.seed, 'config');
  const nodes = p.int(3, 5);
  const clients = p.int(2, 4);
  const opsTotal = p.int(Math.max(clients, Math.ceil(params.opsMax / 3)), Math.max(clients, params.opsMax));
  // Membership changes come from their own stream, so adding them left the other choices alone.
  const m = Prng.derive(params.seed, 'membership');
  const spares = m.int(0, 2);
  return {
    nodes,
    spares,
    membershipEvents: m.chance(0.5) ? m.int(1, 3) : 0,
    antiEntropyIntervalMs: m.pick([0, 2000, 10_000]),
    handoffBatchKeysMax: m.pick([1, 3, 100]),
    handoffBytesPerSecondMax: m.pick([2048, 40 << 20]),
    partitionCount: p.pick([4, 8, 16]),
    replicationFactor: 3,
    // Mostly a cap no run reaches; sometimes a tiny one, so drops by the cap happen and are checked.
    maxSiblings: p.chance(0.2) ? 3 : 100,
    clockSkewMsMax: p.pick([0, 50, 5000]),
    faults: {
      delayMsMin: 1,
      delayMsMax: p.pick([5, 20]),
      lateProbability: p.pick([0, 0.02, 0.05]),
      lateDelayMsMax: 800,
      dropProbability: p.pick([0, 0, 0.01, 0.05, 0.1]),
      duplicateProbability: p.pick([0, 0.02, 0.05]),
    },
    // About one crash or partition per 15 operations at most, so long soaks stay as faulty as short runs.
    faultEvents: p.int(0, 2 + Math.ceil(opsTotal / 15)),
    workload: {
      clients,
      opsPerClient: Math.ceil(opsTotal / clients),
      setKeys: p.int(1, 3),
      plainKeys: p.int(0, 1),
      thinkMsMax: p.pick([20, 200]),
      operationTimeoutMs: 5000,
    },
  };
}

export function replayCommand(params: SimParams): string {
  return `npm run sim -- --seed ${params.seed} --ops ${params.opsMax}${params.brokenMerge ? ' --broken-merge' : ''}`;
}

/**
 * A deliberately broken merge for the checker's own test: when two concurrent objects are joined
 * it drops the lowest sibling, while the merged context still claims to have seen it.
 */
export const brokenMerge: MergeObjects = (a, b, options) => {
  const merged = merge(a, b, options);
  const concurrent = !objectDescends(a, b) && !objectDescends(b, a);
  if (!concurrent || merged.siblings.length < 2) return merged;
  return { context: merged.context, siblings: merged.siblings.slice(1) };
};

export async function runSimulation(params: SimParams): Promise<SimResult> {
  const config = configFor(params);
  const trace = createHash('sha256');
  const cluster = new SimCluster(
    {
      seed: params.seed,
      nodes: config.nodes,
      spares: config.spares,
      antiEntropyIntervalMs: config.antiEntropyIntervalMs,
      handoffBatchKeysMax: config.handoffBatchKeysMax,
      handoffBytesPerSecondMax: config.handoffBytesPerSecondMax,
      partitionCount: config.partitionCount,
      replicationFactor: config.replicationFactor,
      maxSiblings: config.maxSiblings,
      faults: CALM_NETWORK,
      clockSkewMsMax: config.clockSkewMsMax,
      ...(params.brokenMerge ? { mergeObjects: brokenMerge } : {}),
    },
    (line, body) => {
      trace.update(line);
      trace.update(body);
      if (params.log !== undefined) params.log(`${line} ${summarise(body)}`);
    },
  );
  const violations: string[] = [];
  const startedAtMs = cluster.runtime.nowMs();
  const log = params.log;
  if (log !== undefined) for (const slot of cluster.nodes) slot.disk.log = (line) => log(`${cluster.runtime.nowMs()} ${slot.id} disk ${line}`);
  await cluster.start();

  // Faulty phase: the workload runs while the network misbehaves and nodes crash.
  cluster.network.faults = config.faults;
  const history = new History();
  const workload = new Workload(cluster, Prng.derive(params.seed, 'workload'), config.workload, history, params.log);
  const faults = new FaultSchedule(cluster, Prng.derive(params.seed, 'faults'), Prng.derive(params.seed, 'membership-events'), config, params.log);
  faults.start();
  workload.start();
  const workloadDeadline = cluster.runtime.nowMs() + WORKLOAD_TIME_MS_MAX;
  while (!workload.done() && cluster.runtime.nowMs() < workloadDeadline) await cluster.advanceBy(100);
  if (!workload.done()) violations.push(`the workload did not finish within ${WORKLOAD_TIME_MS_MAX} virtual ms`);

  // Heal: no more faults, every node back up, then wait until hints are delivered.
  faults.stop();
  cluster.network.healPartitions();
  cluster.network.faults = CALM_NETWORK;
  for (const slot of cluster.nodes) await cluster.restart(slot.id);
  const quiescedAtMs = await quiesce(cluster);
  if (quiescedAtMs === undefined) {
    const ring = cluster.settledRing();
    violations.push(
      `no quiescence within ${QUIESCENCE_TIME_MS_MAX} virtual ms: hint backlog ${await cluster.hintBacklog()}, all nodes up: ${cluster.allSeeEachOther()}, ` +
        `change pending: ${!cluster.noChangePending()} (ring v${ring.version}, ${ring.members.map((m) => `${m.id}:${m.state}`).join(' ')}, waiting transfers ${ring.pending?.transfers.filter((t) => t.state !== 'done').length ?? 0})`,
    );
  }
  violations.push(...checkMembers(cluster));

  // Final read-repair pass: every key once with r=N through the coordinators.
  violations.push(...(await finalReads(cluster, workload.keys())));
  await cluster.advanceBy(READ_REPAIR_SETTLE_MS);

  const check = await checkCluster(cluster, history, workload.keys());
  violations.push(...check.violations);
  // Background loops may only fail because a peer was unreachable; anything else is a bug.
  for (const error of cluster.errors.filter((e) => !EXPECTED_BACKGROUND_ERROR.test(e)).slice(0, 5)) violations.push(`unexpected background error: ${error}`);
  // The trace ends with every node's final storage, so equal hashes mean equal end states too.
  for (const slot of cluster.nodes) {
    for await (const [key, value] of slot.disk.view().scan({ gte: Uint8Array.of(0x00), lt: Uint8Array.of(0xff) })) {
      trace.update(slot.id);
      trace.update(key);
      trace.update(value);
    }
  }
  cluster.stop();

  const stats: SimStats = {
    ...check.stats,
    operations: history.operations.length,
    operationsOk: history.operations.filter((o) => o.outcome === 'ok').length,
    crashes: cluster.counters.crashes,
    partitions: faults.partitions,
    virtualMs: cluster.runtime.nowMs() - startedAtMs,
    network: { ...cluster.network.stats },
    unsyncedLost: cluster.nodes.reduce((sum, n) => sum + n.disk.unsyncedLost, 0),
    hintsDelivered: cluster.counters.hintsDelivered,
    readRepairs: cluster.counters.readRepairs,
    siblingsDropped: cluster.counters.siblingsDropped,
    joins: cluster.counters.joins,
    leaves: cluster.counters.leaves,
    handoffKeys: cluster.counters.handoffKeys,
    antiEntropyKeysRepaired: cluster.counters.antiEntropyKeysRepaired,
  };
  return { seed: params.seed, config, violations, stats, traceHash: trace.digest('hex'), replay: replayCommand(params), backgroundErrors: cluster.errors };
}

/** A message body in a line: its bucket/key and object siblings when it has them (for explained runs). */
function summarise(body: Uint8Array): string {
  if (body.length === 0) return '';
  let message: unknown;
  try {
    message = unpackMessage(body);
  } catch {
    return `(${body.length} bytes)`;
  }
  if (typeof message !== 'object' || message === null) return '';
  const fields = message as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof fields.key === 'string') parts.push(`key=${fields.key}`);
  if (typeof fields.hintFor === 'string') parts.push(`hintFor=${fields.hintFor}`);
  if (fields.object instanceof Uint8Array) parts.push(describe(decodeObject(fields.object)));
  if (typeof fields.code === 'string') parts.push(`error=${fields.code}: ${String(fields.message)}`);
  return parts.join(' ');
}

/**
 * Advances time until no hints wait, no membership change is pending, every member sees every
 * other and nodes that left are retired; undefined if it never happens.
 */
async function quiesce(cluster: SimCluster): Promise<number | undefined> {
  const startMs = cluster.runtime.nowMs();
  while (cluster.runtime.nowMs() - startMs < QUIESCENCE_TIME_MS_MAX) {
    await cluster.advanceBy(QUIESCENCE_STEP_MS);
    const waitedMs = cluster.runtime.nowMs() - startMs;
    if (waitedMs < QUIESCENCE_TIME_MS_MIN || !cluster.noChangePending()) continue;
    // Shut down nodes that finished leaving before the last checks, as the operator would.
    await cluster.retireLeftNodes();
    if (cluster.allSeeEachOther() && (await cluster.hintBacklog()) === 0) return waitedMs;
  }
  return undefined;
}

/** The ring's active members are exactly the slots the simulation counts as members. */
function checkMembers(cluster: SimCluster): string[] {
  const expected = cluster.members().map((s) => s.id).sort();
  const actual = cluster.activeMemberIds().sort();
  if (expected.join(',') === actual.join(',')) return [];
  const views = cluster.running().map((s) => `${s.id}(${s.role}) sees v${s.process!.membership.ring().version} ${s.process!.membership.ring().members.map((m) => `${m.id}:${m.state}`).join(' ')}`);
  return [`the ring's active members are ${actual.join(',')}, the simulation expected ${expected.join(',')}; ${views.join('; ')}`];
}

async function finalReads(cluster: SimCluster, keys: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  const n = cluster.options.replicationFactor;
  for (const [i, key] of keys.entries()) {
    let lastError = '';
    let done = false;
    for (let attempt = 0; attempt < FINAL_READ_ATTEMPTS && !done; attempt++) {
      const members = cluster.members();
      const slot = members[(i + attempt) % members.length]!;
      const read = slot.process!.coordinator.get({ bucket: BUCKET, key, read: { r: n, pr: 0 }, consistent: false, conflictMode: 'siblings' });
      try {
        await cluster.runUntilSettled(read);
        done = true;
      } catch (error) {
        lastError = (error as Error).message;
        await cluster.advanceBy(1000);
      }
    }
    if (!done) problems.push(`final read of ${key} with r=${n} failed after a heal: ${lastError}`);
  }
  return problems;
}

/**
 * Crashes and partitions at seeded times during the workload. A crashed node restarts after a
 * while, sometimes with a stepped clock. At most nodes-1 nodes are down at once.
 */
class FaultSchedule {
  partitions = 0;
  private active = false;
  private readonly spanMs: number;
  constructor(
    private readonly cluster: SimCluster,
    private readonly prng: Prng,
    /** Joins and leaves draw from their own stream, so they do not shift the other faults' choices. */
    private readonly membershipPrng: Prng,
    private readonly config: SimConfig,
    private readonly log: ((line: string) => void) | undefined,
  ) {
    this.spanMs = config.workload.opsPerClient * (config.workload.thinkMsMax / 2 + 60);
  }

  /**
   * A join of a spare (or of a node that left) when there is one and a coin says so, else a
   * leave of a member while more than N members remain. Refusals (a change is pending) are part
   * of the schedule.
   */
  private scheduleMembershipChange(atMs: number): void {
    const p = this.membershipPrng;
    const wantsJoin = p.chance(0.5);
    const choice = p.next();
    this.cluster.runtime.schedule(() => {
      if (!this.active) return;
      const failed = (what: string) => (error: unknown) => this.cluster.errors.push(`${what}: ${(error as Error).message}`);
      const joinable = this.cluster.nodes.filter((s) => (s.role === 'spare' || s.role === 'left') && s.process === undefined);
      const members = this.cluster.members();
      const running = members.filter((s) => s.process !== undefined);
      if ((wantsJoin || members.length <= this.cluster.options.replicationFactor) && joinable.length > 0) {
        const slot = joinable[Math.floor(choice * joinable.length)]!;
        this.log?.(`${this.cluster.runtime.nowMs()} join ${slot.id}`);
        this.cluster
          .join(slot.id, (candidates) => p.pick(candidates))
          .then((joined) => this.log?.(`${this.cluster.runtime.nowMs()} join ${slot.id}: ${joined ? 'joined' : 'gave up'}`))
          .catch(failed(`join ${slot.id}`));
      } else if (running.length > 0) {
        // Leave only while more than N members would stay, as the operator does (a ring with
        // fewer members than N cannot hold N copies). The via node's ring says who stays.
        const via = p.pick(running);
        const staying = via.process!.membership.ring().members.filter((m) => m.state === 'normal' || m.state === 'joining');
        const candidates = members.filter((s) => staying.some((m) => m.id === s.id));
        if (staying.length <= this.cluster.options.replicationFactor || candidates.length === 0) return;
        const slot = candidates[Math.floor(choice * candidates.length)]!;
        this.log?.(`${this.cluster.runtime.nowMs()} leave ${slot.id} via ${via.id}`);
        this.cluster
          .leave(slot.id, via.id)
          .then((accepted) => this.log?.(`${this.cluster.runtime.nowMs()} leave ${slot.id}: ${accepted ? 'accepted' : 'refused'}`))
          .catch(failed(`leave ${slot.id}`));
      }
    }, atMs);
  }

  /** Nodes that finished leaving are shut down about once a second, as an operator would. */
  private retireLoop(): void {
    this.cluster.runtime.schedule(() => {
      if (!this.active) return;
      this.cluster.retireLeftNodes().catch((error: unknown) => this.cluster.errors.push(`retire: ${(error as Error).message}`));
      this.retireLoop();
    }, 1000);
  }

  start(): void {
    this.active = true;
    for (let i = 0; i < this.config.faultEvents; i++) {
      const atMs = this.prng.int(0, this.spanMs);
      if (this.prng.chance(0.5)) this.schedulePartition(atMs);
      else this.scheduleCrash(atMs);
    }
    for (let i = 0; i < this.config.membershipEvents; i++) this.scheduleMembershipChange(this.membershipPrng.int(0, this.spanMs));
    this.retireLoop();
  }

  stop(): void {
    this.active = false;
  }

  private schedulePartition(atMs: number): void {
    const durationMs = this.prng.int(200, 4000);
    const { side, rest } = this.prng.split(this.cluster.nodes.map((n) => n.peerUrl));
    this.cluster.runtime.schedule(() => {
      if (!this.active) return;
      this.partitions++;
      this.log?.(`${this.cluster.runtime.nowMs()} partition ${side.join(',')} | ${rest.join(',')}`);
      this.cluster.network.partition(side, rest);
      this.cluster.runtime.schedule(() => {
        if (!this.active) return;
        this.log?.(`${this.cluster.runtime.nowMs()} heal partitions`);
        this.cluster.network.healPartitions();
      }, durationMs);
    }, atMs);
  }

  private scheduleCrash(atMs: number): void {
    const durationMs = this.prng.int(300, 5000);
    const victim = this.prng.pick(this.cluster.nodes).id;
    // A spare or a node that left has no process: crashing it is a no-op.
    const newSkewMs = this.prng.chance(0.3) ? this.prng.int(-this.config.clockSkewMsMax, this.config.clockSkewMsMax) : undefined;
    this.cluster.runtime.schedule(() => {
      if (!this.active || this.cluster.running().length <= 1) return;
      this.log?.(`${this.cluster.runtime.nowMs()} crash ${victim}`);
      // A failing crash or restart is a simulator or start-up bug: it surfaces as a background error.
      const failed = (what: string) => (error: unknown) => this.cluster.errors.push(`${victim} ${what}: ${(error as Error).message}`);
      this.cluster.crash(victim).catch(failed('crash'));
      this.cluster.runtime.schedule(() => {
        if (!this.active) return;
        this.log?.(`${this.cluster.runtime.nowMs()} restart ${victim}`);
        this.cluster.restart(victim, newSkewMs).catch(failed('restart'));
      }, durationMs);
    }, atMs);
  }
}
