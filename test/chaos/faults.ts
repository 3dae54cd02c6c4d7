/**
 * The fault schedule of a real-process verify run, and the code that carries it out.
 *
 * The schedule is a pure function of the seed (planFaults), so a run's faults replay exactly;
 * the interleaving of real processes does not, which is why a failing seed is a strong hint
 * rather than a guaranteed reproduction.
 *
 * Two faults, both on loopback and both undone by heal():
 * - pause: SIGSTOP then, some seconds later, SIGCONT. A stopped process accepts TCP connections
 *   (the kernel queues them) but answers nothing, which to its peers and clients looks like a
 *   partition: requests time out, the failure detector marks it down, hints pile up for it.
 * - kill: kill -9 (no shutdown code runs), then a restart on the same ports and data directory.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Prng } from '../sim/prng';
import type { LocalCluster } from '../support/cluster';

export type FaultKind = 'pause' | 'kill';

export interface FaultTarget {
  readonly node: string;
  readonly kind: FaultKind;
}

/** One fault window: at `atMs` after the workload starts, the targets fail for `durationMs`. */
export interface Fault {
  readonly atMs: number;
  readonly durationMs: number;
  readonly targets: readonly FaultTarget[];
}

export interface FaultPlanOptions {
  /** Quiet time before the first fault and between two faults. */
  readonly gapMsMin: number;
  readonly gapMsMax: number;
  readonly pauseMsMin: number;
  readonly pauseMsMax: number;
  /** Time a killed node stays down before its restart begins. */
  readonly downMsMin: number;
  readonly downMsMax: number;
  /** Chance that a window hits two nodes at once (still fewer than N, so quorums can be met). */
  readonly doubleFaultProbability: number;
  /** No fault starts later than this before the end of the workload. */
  readonly tailMs: number;
  /** A bound on the schedule's length, whatever the duration. */
  readonly faultsMax: number;
}

export const DEFAULT_FAULT_PLAN: FaultPlanOptions = {
  gapMsMin: 500,
  gapMsMax: 2000,
  pauseMsMin: 1500,
  pauseMsMax: 4000,
  downMsMin: 500,
  downMsMax: 2500,
  doubleFaultProbability: 0.3,
  tailMs: 1500,
  faultsMax: 100,
};

/** The fault windows of a workload of `runMs`, one after another, drawn from `seed`. */
export function planFaults(seed: number, nodeIds: readonly string[], runMs: number, options: FaultPlanOptions = DEFAULT_FAULT_PLAN): Fault[] {
  const prng = Prng.derive(seed, 'chaos-faults');
  const faults: Fault[] = [];
  let atMs = prng.int(options.gapMsMin, options.gapMsMax);
  while (faults.length < options.faultsMax && atMs + options.tailMs <= runMs) {
    const double = nodeIds.length >= 3 && prng.chance(options.doubleFaultProbability);
    const nodes = prng.split(nodeIds).side.slice(0, double ? 2 : 1);
    const targets = nodes.map((node): FaultTarget => ({ node, kind: prng.chance(0.5) ? 'pause' : 'kill' }));
    const anyPause = targets.some((t) => t.kind === 'pause');
    const durationMs = anyPause ? prng.int(options.pauseMsMin, options.pauseMsMax) : prng.int(options.downMsMin, options.downMsMax);
    faults.push({ atMs, durationMs, targets });
    atMs += durationMs + prng.int(options.gapMsMin, options.gapMsMax);
  }
  return faults;
}

export function describeFault(fault: Fault): string {
  const what = fault.targets.map((t) => `${t.kind} ${t.node}`).join(' + ');
  return `at ${(fault.atMs / 1000).toFixed(1)} s for ${(fault.durationMs / 1000).toFixed(1)} s: ${what}`;
}

/**
 * The pid of a running node, found by its unique data directory on its command line. LocalCluster
 * keeps its child processes to itself; the data directory is public and names exactly one process.
 */
export function nodePid(cluster: LocalCluster, id: string): number {
  const dataDir = cluster.node(id).dataDir;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // The process exited while we looked.
    }
    const at = argv.indexOf('--data-dir');
    if (at >= 0 && argv[at + 1] === dataDir) return Number(entry);
  }
  throw new Error(`no running process for ${id} (data dir ${dataDir})`);
}

/**
 * Carries out a fault plan against a cluster, on the wall clock. Faults run one window at a time;
 * when a restart makes the run late, the next window starts at once rather than being skipped,
 * so every planned fault happens. `undoAll` is safe to call at any time, twice included.
 */
export class FaultRunner {
  private readonly paused = new Set<string>();
  private readonly killed = new Set<string>();
  readonly executed: string[] = [];

  constructor(
    private readonly cluster: LocalCluster,
    private readonly log: (line: string) => void,
  ) {}

  /** Runs `plan` from `startMs` (a Date.now() value) until it ends or `signal` aborts. */
  async run(plan: readonly Fault[], startMs: number, signal: AbortSignal): Promise<void> {
    for (const fault of plan) {
      if (!(await this.waitUntil(startMs + fault.atMs, signal))) return;
      const sinceStartS = ((Date.now() - startMs) / 1000).toFixed(1);
      this.log(`t=${sinceStartS}s fault ${describeFault(fault)}`);
      this.executed.push(describeFault(fault));
      for (const target of fault.targets) await this.apply(target);
      await this.waitUntil(Date.now() + fault.durationMs, signal);
      await this.undoAll();
    }
  }

  /** SIGCONT for every paused node, a restart for every killed one. */
  async undoAll(): Promise<void> {
    for (const id of [...this.paused]) {
      this.signal(id, 'SIGCONT');
      this.paused.delete(id);
    }
    for (const id of [...this.killed]) {
      this.killed.delete(id);
      if (!this.cluster.isRunning(id)) await this.cluster.startNode(id);
    }
  }

  private async apply(target: FaultTarget): Promise<void> {
    if (!this.cluster.isRunning(target.node)) return;
    if (target.kind === 'pause') {
      this.signal(target.node, 'SIGSTOP');
      this.paused.add(target.node);
    } else {
      this.killed.add(target.node);
      await this.cluster.kill(target.node);
    }
  }

  private signal(id: string, signal: 'SIGSTOP' | 'SIGCONT'): void {
    try {
      process.kill(nodePid(this.cluster, id), signal);
    } catch (error) {
      // A node that is gone cannot be paused or resumed; heal restarts it.
      this.log(`${signal} ${id} failed: ${(error as Error).message}`);
    }
  }

  /** Sleeps until `deadlineMs`; false when aborted first. */
  private async waitUntil(deadlineMs: number, signal: AbortSignal): Promise<boolean> {
    const waitMs = deadlineMs - Date.now();
    if (signal.aborted) return false;
    if (waitMs <= 0) return true;
    try {
      await sleep(waitMs, undefined, { signal });
      return true;
    } catch {
      return false;
    }
  }
}
