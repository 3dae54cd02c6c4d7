/**
 * The YCSB suite (issue 8): workloads A, B, C and F against the bare node:http ceiling, one
 * dynamokv node, a local 3-node cluster and, where installed, a 3-member etcd cluster and Redis,
 * side by side in one run, closed loop (maximum throughput) and open loop (fixed offered rates,
 * latency from the scheduled time). Results: bench/results/ycsb-<stamp>.md, .json and PNG charts.
 *
 *   npm run bench:ycsb -- --duration 5 --workloads A,F --targets bare,node,cluster,etcd,redis
 *
 * Targets run one at a time (start, load, every cell, stop), so an idle target never competes
 * for the cores. Every child is stopped by id at the end, on error, on ctrl-c and past a time limit.
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ContextCache } from '../lib/load';
import { startWatchdog } from '../lib/measure';
import { cpuSeconds, installExitHandlers, stopProcess, type ManagedProcess } from '../lib/processes';
import { formatNumber, machineFacts, textTable, writeReport } from '../lib/report';
import { REQUEST_TIMEOUT_MS_DEFAULT } from './clients';
import { loadRecords, runClosedLoop, runOpenLoop, type PhaseResult, type RunSpec } from './driver';
import { DISTRIBUTIONS, WORKLOADS, type Distribution, type Workload } from './generators';
import { DETAIL_COLUMNS, detailRows, markdownReport, type CellResult, type SuiteReport, type TargetNote } from './report';
import { TARGET_LABELS, TARGET_NAMES, startTarget, unavailableReason, type StartedTarget, type TargetName } from './targets';

const PROGRAM = 'ycsb';
const repoRoot = path.resolve(__dirname, '..', '..', '..');
/** Start-up, load phase and stop of one target, at most, before the watchdog ends the run. */
const TARGET_OVERHEAD_SEC_MAX = 150;
/** driver.ts waits at most this long for an overloaded open-loop cell's late answers. */
const SETTLE_SEC_MAX = 15;

const USAGE = `Usage: node dist/bench/ycsb/main.js [options]
  --targets <list>       of ${TARGET_NAMES.join(',')} (default: all; peers not installed are skipped)
  --workloads <list>     of A,B,C,F (default A,B,C,F)
  --distributions <list> of zipfian,uniform (default zipfian; zipfian constant 0.99, scrambled)
  --modes <list>         closed,open (default both)
  --rates <list>         open-loop offered ops/s (default 1000,4000,16000)
  --duration <s>         measured seconds per cell (default 5)
  --warmup <s>           warm-up seconds per cell, discarded (default 1)
  --drain <s>            open loop: wait at most this long for late answers (default 2)
  --concurrency <n>      closed-loop workers (default 50)
  --connections <n>      connections per target (default: --concurrency); more than the workers lets
                         an open-loop cell put its backlog on the target instead of in the client
  --timeout-ms <n>       an operation's request fails after this long without an answer
                         (default 10000; the Redis client has none)
  --open-in-flight <n>   open loop: operations sent and unanswered at most (default: --connections).
                         Above the connections, the rest queue inside the HTTP client with the
                         contexts they were given when queued (see the report's notes)
  --records <n>          records written by the load phase (default 10000)
  --value-bytes <n>      value size (default 1024)
  --seed <n>             PRNG seed (default 1)
  --node-arg <flag>      extra flag for every dynamokv node, repeatable
  --out <prefix>         results prefix (default bench/results/ycsb-<date>-<time>)
  --no-charts            skip the PNG charts`;

interface Settings {
  targets: TargetName[];
  workloads: Workload[];
  distributions: Distribution[];
  closed: boolean;
  rates: number[];
  durationSec: number;
  warmupSec: number;
  drainSec: number;
  concurrency: number;
  connections: number;
  openInFlightMax: number;
  timeoutMs: number;
  records: number;
  valueBytes: number;
  seed: number;
  nodeArgs: string[];
  outPrefix: string;
  charts: boolean;
}

function fail(message: string): never {
  process.stderr.write(`${PROGRAM}: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function list(raw: string): string[] {
  return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function positive(name: string, raw: string, min = 1): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) fail(`--${name} must be an integer >= ${min}, got ${raw}`);
  return value;
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      targets: { type: 'string', default: TARGET_NAMES.join(',') },
      workloads: { type: 'string', default: 'A,B,C,F' },
      distributions: { type: 'string', default: 'zipfian' },
      modes: { type: 'string', default: 'closed,open' },
      rates: { type: 'string', default: '1000,4000,16000' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      drain: { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '50' },
      connections: { type: 'string' },
      'open-in-flight': { type: 'string' },
      'timeout-ms': { type: 'string', default: String(REQUEST_TIMEOUT_MS_DEFAULT) },
      records: { type: 'string', default: '10000' },
      'value-bytes': { type: 'string', default: '1024' },
      seed: { type: 'string', default: '1' },
      'node-arg': { type: 'string', multiple: true, default: [] },
      out: { type: 'string' },
      'no-charts': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const targets = list(values.targets).map((t) => (TARGET_NAMES.includes(t as TargetName) ? (t as TargetName) : fail(`unknown target ${t}`)));
  const workloads = list(values.workloads).map((w) => WORKLOADS[w.toUpperCase()] ?? fail(`unknown workload ${w}`));
  const distributions = list(values.distributions).map((d) => (DISTRIBUTIONS.includes(d as Distribution) ? (d as Distribution) : fail(`unknown distribution ${d}`)));
  const modes = list(values.modes);
  if (modes.some((m) => m !== 'closed' && m !== 'open')) fail(`--modes takes closed and/or open, got ${values.modes}`);
  const connections = values.connections === undefined ? positive('concurrency', values.concurrency) : positive('connections', values.connections);
  const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
  return {
    targets,
    workloads,
    distributions,
    closed: modes.includes('closed'),
    rates: modes.includes('open') ? list(values.rates).map((r) => positive('rates', r)) : [],
    durationSec: positive('duration', values.duration),
    warmupSec: positive('warmup', values.warmup, 0),
    drainSec: positive('drain', values.drain, 0),
    concurrency: positive('concurrency', values.concurrency),
    connections,
    openInFlightMax: values['open-in-flight'] === undefined ? connections : positive('open-in-flight', values['open-in-flight']),
    timeoutMs: positive('timeout-ms', values['timeout-ms']),
    records: positive('records', values.records),
    valueBytes: positive('value-bytes', values['value-bytes']),
    seed: positive('seed', values.seed, 0),
    nodeArgs: values['node-arg'],
    outPrefix: values.out ?? path.join('bench', 'results', `ycsb-${stamp}`),
    charts: !values['no-charts'],
  };
}

function cellsPerTarget(settings: Settings): number {
  return settings.workloads.length * settings.distributions.length * ((settings.closed ? 1 : 0) + settings.rates.length);
}

interface Cell {
  workload: Workload;
  distribution: Distribution;
  rateOps: number | undefined;
}

function cellsOf(settings: Settings): Cell[] {
  const cells: Cell[] = [];
  for (const workload of settings.workloads) {
    for (const distribution of settings.distributions) {
      if (settings.closed) cells.push({ workload, distribution, rateOps: undefined });
      for (const rateOps of settings.rates) cells.push({ workload, distribution, rateOps });
    }
  }
  return cells;
}

async function runPhase(spec: RunSpec, cell: Cell, settings: Settings): Promise<PhaseResult> {
  return cell.rateOps === undefined
    ? runClosedLoop(spec, settings.concurrency)
    : runOpenLoop(spec, { rateOps: cell.rateOps, inFlightMax: settings.openInFlightMax, drainSec: settings.drainSec });
}

function sumCpu(processes: readonly ManagedProcess[]): number | undefined {
  let total = 0;
  for (const proc of processes) {
    const seconds = cpuSeconds(proc.pid);
    if (seconds === undefined) return undefined;
    total += seconds;
  }
  return total;
}

/** Start, load, every cell, stop: one target. Its processes are stopped whatever happens. */
async function runTarget(name: TargetName, settings: Settings, dataDir: string, signal: AbortSignal, cells: CellResult[]): Promise<TargetNote> {
  const started: ManagedProcess[] = [];
  const value = Buffer.alloc(settings.valueBytes, 0x79);
  let target: StartedTarget | undefined;
  try {
    process.stderr.write(`starting ${TARGET_LABELS[name]}\n`);
    target = await startTarget(name, { repoRoot, dataDir: path.join(dataDir, name), valueBytes: settings.valueBytes, nodeArgs: settings.nodeArgs, started });
    const client = await target.openClient(settings.connections, settings.timeoutMs);
    try {
      const contexts = new ContextCache();
      process.stderr.write(`  load phase: ${settings.records} records\n`);
      const loadSec = await loadRecords(client, settings.records, value, contexts, TARGET_OVERHEAD_SEC_MAX / 2, signal);
      for (const [index, cell] of cellsOf(settings).entries()) {
        if (signal.aborted) break;
        const what = `${cell.workload.name} ${cell.distribution} ${cell.rateOps === undefined ? 'closed' : `open ${cell.rateOps}/s`}`;
        const spec: RunSpec = { client, workload: cell.workload, distribution: cell.distribution, records: settings.records, value, seed: settings.seed + index, durationSec: settings.warmupSec, contexts, signal };
        if (settings.warmupSec > 0) await runPhase(spec, cell, settings);
        const cpuBefore = sumCpu(target.processes);
        const clientBefore = process.cpuUsage();
        const phaseStartMs = performance.now();
        const result = await runPhase({ ...spec, durationSec: settings.durationSec }, cell, settings);
        const cpuAfter = sumCpu(target.processes);
        const loadgen = process.cpuUsage(clientBefore);
        // CPU over the whole phase, which for an overloaded open-loop cell includes its drain.
        const seconds = Math.max(result.durationSec, (performance.now() - phaseStartMs) / 1000);
        cells.push({
          target: name,
          label: target.label,
          workload: cell.workload.name,
          distribution: cell.distribution,
          result,
          serverCpuPercent: cpuBefore === undefined || cpuAfter === undefined ? undefined : ((cpuAfter - cpuBefore) / seconds) * 100,
          clientCpuPercent: ((loadgen.user + loadgen.system) / 1e6 / seconds) * 100,
        });
        process.stderr.write(`  ${what}: ${formatNumber(result.throughputOps, 0)} ops/s (goodput ${formatNumber(result.goodputOps, 0)}, 503 ${result.refused}), p99 ${formatNumber(result.all.p99Ms, 2)} ms, p99.9 ${formatNumber(result.all.p999Ms, 2)} ms\n`);
      }
      return { target: name, label: target.label, note: target.description, ran: true, loadSec };
    } finally {
      await client.close();
    }
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] ?? error.message : String(error);
    process.stderr.write(`  ${TARGET_LABELS[name]} failed: ${message}\n`);
    return { target: name, label: TARGET_LABELS[name], note: `failed: ${message}`, ran: cells.some((c) => c.target === name) };
  } finally {
    await Promise.all(started.map((proc) => stopProcess(proc)));
  }
}

/** The charts need matplotlib; it lives in a venv under bench/.venv, created on first use. */
function drawCharts(jsonFile: string, outPrefix: string): { charts: string[]; problem?: string } {
  const venv = path.join(repoRoot, 'bench', '.venv');
  const python = path.join(venv, 'bin', 'python');
  try {
    if (!existsSync(python)) {
      process.stderr.write(`creating ${path.relative(repoRoot, venv)} with matplotlib for the charts\n`);
      execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit', timeout: 120_000 });
    }
    execFileSync(python, ['-c', 'import matplotlib'], { stdio: 'ignore', timeout: 60_000 });
  } catch {
    try {
      execFileSync(path.join(venv, 'bin', 'pip'), ['install', '--quiet', 'matplotlib'], { stdio: 'inherit', timeout: 300_000 });
    } catch (error) {
      return { charts: [], problem: `matplotlib unavailable: ${error instanceof Error ? error.message : String(error)}` };
    }
  }
  try {
    const out = execFileSync(python, [path.join(repoRoot, 'bench', 'ycsb', 'charts.py'), jsonFile, outPrefix], { encoding: 'utf8', timeout: 120_000 });
    return { charts: out.split('\n').filter((l) => l.endsWith('.png')) };
  } catch (error) {
    return { charts: [], problem: `charts.py failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

async function main(): Promise<void> {
  const settings = readSettings();
  // Warm-up and measured phase each: the schedule, the drain and the bounded settling of late answers.
  const cellSec = settings.warmupSec + settings.durationSec + 2 * (settings.drainSec + SETTLE_SEC_MAX);
  startWatchdog(PROGRAM, settings.targets.length * (TARGET_OVERHEAD_SEC_MAX + cellsPerTarget(settings) * cellSec) + 300);
  const abort = new AbortController();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'dynamokv-ycsb-'));
  const removeData = (): void => rmSync(dataDir, { recursive: true, force: true });
  // On ctrl-c: stop the load; the exit handlers stop the children; the data goes only on 'exit'.
  installExitHandlers(async () => abort.abort());
  process.on('exit', removeData);

  const cells: CellResult[] = [];
  const targets: TargetNote[] = [];
  for (const name of settings.targets) {
    if (abort.signal.aborted) break;
    const missing = unavailableReason(name);
    if (missing !== undefined) {
      process.stderr.write(`skipping ${TARGET_LABELS[name]}: ${missing}\n`);
      targets.push({ target: name, label: TARGET_LABELS[name], note: missing, ran: false });
      continue;
    }
    targets.push(await runTarget(name, settings, dataDir, abort.signal, cells));
  }
  removeData();

  const report: SuiteReport = {
    facts: machineFacts(repoRoot),
    command: `node dist/bench/ycsb/main.js ${process.argv.slice(2).join(' ')}`.trim(),
    settings: {
      workloads: settings.workloads.map((w) => w.name).join('/'),
      distributions: settings.distributions.join('/'),
      records: settings.records,
      valueBytes: settings.valueBytes,
      concurrency: settings.concurrency,
      connections: settings.connections,
      openInFlightMax: settings.openInFlightMax,
      timeoutMs: settings.timeoutMs,
      rates: settings.rates.join('/') || 'none',
      durationSec: settings.durationSec,
      warmupSec: settings.warmupSec,
      drainSec: settings.drainSec,
      seed: settings.seed,
    },
    targets,
    cells,
    charts: [],
  };
  const jsonFile = writeReport(repoRoot, `${settings.outPrefix}.json`, JSON.stringify(report, null, 2));
  if (settings.charts && cells.length > 0) {
    const drawn = drawCharts(path.resolve(repoRoot, jsonFile), path.resolve(repoRoot, settings.outPrefix));
    report.charts = drawn.charts.map((file) => path.basename(file));
    report.chartProblem = drawn.problem;
  }
  const mdFile = writeReport(repoRoot, `${settings.outPrefix}.md`, markdownReport(report));
  writeReport(repoRoot, jsonFile, JSON.stringify(report, null, 2));
  process.stdout.write(`\n${textTable(DETAIL_COLUMNS, detailRows(cells))}\n\n`);
  for (const t of targets.filter((n) => !n.ran)) process.stdout.write(`skipped ${t.label}: ${t.note}\n`);
  process.stdout.write(`report: ${mdFile}\ndata: ${jsonFile}\ncharts: ${report.charts.join(', ') || (report.chartProblem ?? 'none')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${PROGRAM} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
