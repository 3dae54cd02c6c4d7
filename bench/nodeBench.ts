/**
 * Single-node benchmark (issue 2): one dynamokv node against a bare node:http server that does no
 * work, side by side in the same run, with the same load generator and the same key/value mix.
 *
 *   npm run bench:node -- [--duration 10] [--connections 50] [--keys 10000] [--warmup 3]
 *   make bench BENCH_ARGS="--duration 5"
 *
 * For each server: preload every key once, then for GET and for PUT a warm-up phase (discarded)
 * and a measured phase of closed-loop load at fixed concurrency with keys uniform at random and
 * 1 KiB values. Reports throughput, p50/p99/p99.9 latency and server CPU, and the dynamokv/bare
 * throughput ratio, on stdout and in bench/results/node-<date>.md. Every process it starts is
 * stopped at the end, on error and on ctrl-c; the node's data lives in a temp dir that is removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ContextCache, preload } from './lib/load';
import { BUCKET, COMMON_OPTIONS, COMMON_USAGE, commonSettings, measure, startWatchdog, targetOf, unexpectedAnswers, type CommonSettings, type Measurement, type Phase, type Target } from './lib/measure';
import { installExitHandlers, stopProcess } from './lib/processes';
import { dateStamp, formatNumber, machineFacts, machineMarkdown, markdownTable, textTable, writeReport, type Row } from './lib/report';
import { startBareServer, startDynamoNode, type RunningServer } from './lib/servers';

const PROGRAM = 'nodeBench';
const repoRoot = path.resolve(__dirname, '..', '..');
const RATIO_GOAL = 0.5;
const PHASES: readonly Phase[] = [
  { name: 'GET', getFraction: 1 },
  { name: 'PUT', getFraction: 0 },
];
/** Start-up and preload get this long on top of the phases before the watchdog stops the run. */
const OVERHEAD_SEC_MAX = 180;

const USAGE = `Usage: node dist/bench/nodeBench.js [options]
${COMMON_USAGE} (default bench/results/node-<date>.md)`;

function readSettings(): CommonSettings {
  const { values } = parseArgs({ options: COMMON_OPTIONS });
  return commonSettings(PROGRAM, USAGE, values, path.join('bench', 'results', `node-${dateStamp()}.md`));
}

const HEADER: Row = ['op', 'server', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'ok/total', 'errors', 'server CPU %', 'loadgen CPU %'];

function rowOf(m: Measurement): Row {
  const stats = m.result.all;
  return [
    m.phase.name,
    m.target.label,
    formatNumber(m.result.throughputRps, 0),
    formatNumber(stats.p50Ms, 2),
    formatNumber(stats.p99Ms, 2),
    formatNumber(stats.p999Ms, 2),
    `${stats.ok}/${stats.requests}`,
    String(m.result.errors),
    formatNumber(m.serverCpuPercent, 0),
    formatNumber(m.clientCpuPercent, 0),
  ];
}

function ratioLines(measurements: Measurement[], bare: Target, node: Target): string[] {
  const lines: string[] = [];
  for (const phase of PHASES) {
    const find = (target: Target) => measurements.find((m) => m.target === target && m.phase === phase);
    const ofBare = find(bare);
    const ofNode = find(node);
    if (ofBare === undefined || ofNode === undefined || ofBare.result.throughputRps === 0) continue;
    const ratio = ofNode.result.throughputRps / ofBare.result.throughputRps;
    const verdict = ratio >= RATIO_GOAL ? 'meets' : 'below';
    lines.push(`${phase.name} throughput dynamokv/bare = ${ratio.toFixed(2)}x (${verdict} the ${RATIO_GOAL}x goal)`);
  }
  return lines;
}

async function main(): Promise<void> {
  const settings = readSettings();
  startWatchdog(PROGRAM, OVERHEAD_SEC_MAX + PHASES.length * 2 * (settings.warmupSec + settings.durationSec));
  const abort = new AbortController();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'dynamokv-bench-'));
  const removeData = (): void => rmSync(dataDir, { recursive: true, force: true });
  // On ctrl-c: stop the load, let the exit handlers stop the servers, and only then (on 'exit')
  // remove the data directory, so RocksDB is never deleted under a running node.
  installExitHandlers(async () => abort.abort());
  process.on('exit', removeData);

  const servers: RunningServer[] = [];
  try {
    process.stderr.write(`starting servers (node data in ${dataDir})\n`);
    const bareServer = await startBareServer(repoRoot, settings.valueBytes);
    servers.push(bareServer);
    const nodeServer = await startDynamoNode(repoRoot, { nodeId: 'b1', dataDir: path.join(dataDir, 'b1'), extraArgs: settings.nodeArgs });
    servers.push(nodeServer);
    const bare = targetOf(bareServer);
    const node = targetOf(nodeServer);
    const targets = [bare, node];

    const contexts = new Map<Target, ContextCache>(targets.map((t) => [t, new ContextCache()]));
    for (const target of targets) {
      process.stderr.write(`preloading ${settings.keys} keys into ${target.label}\n`);
      await preload({ baseUrls: target.baseUrls, bucket: BUCKET, keys: settings.keys, valueBytes: settings.valueBytes, contexts: contexts.get(target) ?? new ContextCache() }, abort.signal);
    }

    const measurements: Measurement[] = [];
    for (const phase of PHASES) {
      for (const target of targets) {
        measurements.push(await measure(target, phase, settings, contexts.get(target) ?? new ContextCache(), abort.signal));
      }
    }

    const facts = machineFacts(repoRoot);
    const ratios = ratioLines(measurements, bare, node);
    const problems = unexpectedAnswers(measurements);
    const rows = measurements.map(rowOf);
    const load = `${settings.connections} connections, closed loop, ${settings.keys} keys uniform, ${settings.valueBytes}-byte values, ` +
      `${settings.warmupSec} s warm-up + ${settings.durationSec} s measured per phase`;

    process.stdout.write(`\n${load}\n\n${textTable(HEADER, rows)}\n\n${ratios.join('\n')}\n`);
    if (problems.length > 0) process.stdout.write(`\nWARNING:\n${problems.join('\n')}\n`);

    const markdown = [
      `# Single-node benchmark, ${facts.date.slice(0, 10)}`,
      '',
      'dynamokv node (one process, RocksDB in a temp dir) against a bare node:http server that does no work (the ceiling),',
      'measured in the same run with the same load generator (autocannon, in the benchmark process).',
      '',
      `Load: ${load}.`,
      `Node flags: ${settings.nodeArgs.length > 0 ? settings.nodeArgs.join(' ') : '(defaults)'}.`,
      '',
      markdownTable(HEADER, rows),
      '',
      ...ratios.map((line) => `- ${line}`),
      ...(problems.length > 0 ? ['', '**Unexpected answers:**', ...problems.map((line) => `- ${line}`)] : []),
      '',
      '## Machine',
      machineMarkdown(facts),
      '',
      'CPU % is user+system time of the process (all threads) over the phase; 100 % = one core.',
      '',
    ].join('\n');
    const written = writeReport(repoRoot, settings.outFile, markdown);
    process.stdout.write(`\nreport written to ${written}\n`);
  } finally {
    await Promise.all(servers.map((server) => stopProcess(server.process)));
    removeData();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${PROGRAM} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
