/**
 * What every benchmark does the same way: the common command-line options, one measured phase
 * (warm-up, then load while the servers' and the load generator's CPU time is taken), and the
 * check for answers that were not the expected ones. A target is anything that serves the key API
 * at one or more base URLs from one or more processes: the bare server, one node, or a cluster.
 */
import type { ContextCache, LoadResult } from './load';
import { runLoad } from './load';
import type { LoadRouting } from './routing';
import { cpuSeconds, machineCpuSeconds, type ManagedProcess } from './processes';
import type { RunningServer } from './servers';

export const BUCKET = 'bench';

export interface Target {
  readonly label: string;
  readonly baseUrls: readonly string[];
  /** Every process that serves the target; their CPU time is added up. */
  readonly processes: readonly ManagedProcess[];
}

export function targetOf(server: RunningServer): Target {
  return { label: server.label, baseUrls: [server.baseUrl], processes: [server.process] };
}

/** The options both benchmarks take; `parseArgs({ options: { ...COMMON_OPTIONS, ...own } })`. */
export const COMMON_OPTIONS = {
  duration: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '3' },
  connections: { type: 'string', default: '50' },
  keys: { type: 'string', default: '10000' },
  'value-bytes': { type: 'string', default: '1024' },
  'node-arg': { type: 'string', multiple: true, default: [] as string[] },
  out: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

export const COMMON_USAGE = `  --duration <s>      measured seconds per phase (default 10)
  --warmup <s>        warm-up seconds per phase, discarded (default 3)
  --connections <n>   concurrent connections, closed loop (default 50)
  --keys <n>          keys, chosen uniformly at random (default 10000)
  --value-bytes <n>   value size in bytes (default 1024)
  --node-arg <flag>   extra flag for every dynamokv node, repeatable (e.g. --node-arg=--log-level=warn)
  --out <file>        markdown report path`;

export interface CommonSettings {
  durationSec: number;
  warmupSec: number;
  connections: number;
  keys: number;
  valueBytes: number;
  nodeArgs: string[];
  outFile: string;
}

/** Parses an integer option or exits with code 2 and the usage text. */
export function integerOption(program: string, usage: string, name: string, raw: string | undefined, min: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    process.stderr.write(`${program}: --${name} must be an integer >= ${min}, got ${String(raw)}\n${usage}\n`);
    process.exit(2);
  }
  return value;
}

/** The parsed values of COMMON_OPTIONS (any extra options of a benchmark are ignored here). */
export interface CommonValues {
  duration?: string;
  warmup?: string;
  connections?: string;
  keys?: string;
  'value-bytes'?: string;
  'node-arg'?: string[];
  out?: string;
  help?: boolean;
}

/** The common settings from parsed values; prints the usage and exits on --help. */
export function commonSettings(program: string, usage: string, values: CommonValues, defaultOutFile: string): CommonSettings {
  if (values.help === true) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const integer = (name: string, raw: string | undefined, min: number): number => integerOption(program, usage, name, raw, min);
  return {
    durationSec: integer('duration', values.duration, 1),
    warmupSec: integer('warmup', values.warmup, 0),
    connections: integer('connections', values.connections, 1),
    keys: integer('keys', values.keys, 1),
    valueBytes: integer('value-bytes', values['value-bytes'], 1),
    nodeArgs: values['node-arg'] ?? [],
    outFile: values.out ?? defaultOutFile,
  };
}

export interface Phase {
  /** Shown in the table, e.g. GET, PUT or MIX. */
  readonly name: string;
  /** Fraction of requests that are GETs. */
  readonly getFraction: number;
}

export interface Measurement {
  readonly target: Target;
  readonly phase: Phase;
  /** How requests chose their node: 'any' (connections spread, keys uniform) or by replica (routing.ts). */
  readonly routing: LoadRouting;
  readonly result: LoadResult;
  /** CPU of all the target's processes together; 100 = one core. */
  readonly serverCpuPercent: number | undefined;
  /** CPU of each of the target's processes, in the order of `target.processes`. */
  readonly processCpuPercent: readonly (number | undefined)[];
  /** CPU of this process, which runs the load generator. */
  readonly clientCpuPercent: number;
  /**
   * Busy share of the whole machine over the phase (100 = every core busy). Far above what the
   * target and the load generator used means something else ran at the same time.
   */
  readonly machineBusyPercent: number | undefined;
}

/**
 * A warm-up run (discarded) and a measured run of `phase` against `target`. With `keysByUrl`
 * (routing.ts keysByReplica) the load is routed to replicas; the measurement says which.
 */
export async function measure(target: Target, phase: Phase, settings: CommonSettings, contexts: ContextCache, signal: AbortSignal, keysByUrl?: readonly (readonly number[])[]): Promise<Measurement> {
  const routing: LoadRouting = keysByUrl === undefined ? 'any' : 'partition-aware';
  const spec = {
    ...(keysByUrl === undefined ? {} : { keysByUrl }),
    baseUrls: target.baseUrls,
    bucket: BUCKET,
    keys: settings.keys,
    valueBytes: settings.valueBytes,
    connections: settings.connections,
    getFraction: phase.getFraction,
    contexts,
  };
  if (settings.warmupSec > 0) {
    process.stderr.write(`  ${target.label} ${phase.name}${routing === 'any' ? '' : ` (${routing})`}: warm-up ${settings.warmupSec} s\n`);
    await runLoad({ ...spec, durationSec: settings.warmupSec }, signal);
  }
  process.stderr.write(`  ${target.label} ${phase.name}${routing === 'any' ? '' : ` (${routing})`}: measuring ${settings.durationSec} s\n`);
  const cpuBefore = target.processes.map((proc) => cpuSeconds(proc.pid));
  const clientBefore = process.cpuUsage();
  const machineBefore = machineCpuSeconds();
  const result = await runLoad({ ...spec, durationSec: settings.durationSec }, signal);
  const cpuAfter = target.processes.map((proc) => cpuSeconds(proc.pid));
  const client = process.cpuUsage(clientBefore);
  const machineAfter = machineCpuSeconds();
  const machineBusyPercent = machineBefore === undefined || machineAfter === undefined || machineAfter.totalSec <= machineBefore.totalSec
    ? undefined
    : ((machineAfter.busySec - machineBefore.busySec) / (machineAfter.totalSec - machineBefore.totalSec)) * 100;
  const percentOf = (seconds: number): number | undefined => (result.durationSec > 0 ? (seconds / result.durationSec) * 100 : undefined);
  const processCpuPercent = cpuAfter.map((after, index) => {
    const before = cpuBefore[index];
    return after === undefined || before === undefined ? undefined : percentOf(after - before);
  });
  const serverCpuPercent = processCpuPercent.some((p) => p === undefined) ? undefined : processCpuPercent.reduce<number>((sum, p) => sum + (p ?? 0), 0);
  const clientCpuPercent = percentOf((client.user + client.system) / 1e6) ?? 0;
  return { target, phase, routing, result, serverCpuPercent, processCpuPercent, clientCpuPercent, machineBusyPercent };
}

/** One line per measurement that had answers other than the expected ones, or client errors. */
export function unexpectedAnswers(measurements: readonly Measurement[]): string[] {
  const notes: string[] = [];
  for (const m of measurements) {
    const failed = m.result.all.requests - m.result.all.ok + m.result.errors;
    if (failed > 0) {
      notes.push(`${m.target.label} ${m.phase.name}: ${failed} unexpected answers or errors (${m.result.timeouts} timeouts); statuses ${JSON.stringify(m.result.statusCounts)}`);
    }
  }
  return notes;
}

/** A bound on the whole run: past it, say so and exit, which kills every child (processes.ts). */
export function startWatchdog(program: string, limitSec: number): NodeJS.Timeout {
  const timer = setTimeout(() => {
    process.stderr.write(`${program}: still running after the ${limitSec} s limit; stopping\n`);
    process.exit(1);
  }, limitSec * 1000);
  timer.unref();
  return timer;
}
