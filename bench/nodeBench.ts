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
import { ContextCache, preload, runLoad, type LoadResult, type Operation } from './lib/load';
import { cpuSeconds, installExitHandlers, stopProcess } from './lib/processes';
import { dateStamp, formatNumber, machineFacts, machineMarkdown, markdownTable, textTable, writeReport, type Row } from './lib/report';
import { startBareServer, startDynamoNode, type RunningServer } from './lib/servers';

const repoRoot = path.resolve(__dirname, '..', '..');
const BUCKET = 'bench';
const RATIO_GOAL = 0.5;

const USAGE = `Usage: node dist/bench/nodeBench.js [options]
  --duration <s>      measured seconds per phase (default 10)
  --warmup <s>        warm-up seconds per phase, discarded (default 3)
  --connections <n>   concurrent connections, closed loop (default 50)
  --keys <n>          keys, chosen uniformly at random (default 10000)
  --value-bytes <n>   value size in bytes (default 1024)
  --node-arg <flag>   extra flag for the dynamokv node, repeatable (e.g. --node-arg=--log-level=warn)
  --out <file>        markdown report path (default bench/results/node-<date>.md)`;

interface Settings {
  durationSec: number;
  warmupSec: number;
  connections: number;
  keys: number;
  valueBytes: number;
  nodeArgs: string[];
  outFile: string;
}

function positiveInteger(name: string, raw: string | undefined, min: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    process.stderr.write(`nodeBench: --${name} must be an integer >= ${min}, got ${String(raw)}\n${USAGE}\n`);
    process.exit(2);
  }
  return value;
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      keys: { type: 'string', default: '10000' },
      'value-bytes': { type: 'string', default: '1024' },
      'node-arg': { type: 'string', multiple: true, default: [] },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  return {
    durationSec: positiveInteger('duration', values.duration, 1),
    warmupSec: positiveInteger('warmup', values.warmup, 0),
    connections: positiveInteger('connections', values.connections, 1),
    keys: positiveInteger('keys', values.keys, 1),
    valueBytes: positiveInteger('value-bytes', values['value-bytes'], 1),
    nodeArgs: values['node-arg'],
    outFile: values.out ?? path.join('bench', 'results', `node-${dateStamp()}.md`),
  };
}

interface Measurement {
  server: RunningServer;
  operation: Operation;
  result: LoadResult;
  serverCpuPercent: number | undefined;
  clientCpuPercent: number;
}

async function measure(server: RunningServer, operation: Operation, settings: Settings, contexts: ContextCache, signal: AbortSignal): Promise<Measurement> {
  const spec = {
    baseUrl: server.baseUrl,
    bucket: BUCKET,
    keys: settings.keys,
    valueBytes: settings.valueBytes,
    connections: settings.connections,
    getFraction: operation === 'get' ? 1 : 0,
    contexts,
  };
  if (settings.warmupSec > 0) {
    process.stderr.write(`  ${server.label} ${operation.toUpperCase()}: warm-up ${settings.warmupSec} s\n`);
    await runLoad({ ...spec, durationSec: settings.warmupSec }, signal);
  }
  process.stderr.write(`  ${server.label} ${operation.toUpperCase()}: measuring ${settings.durationSec} s\n`);
  const cpuBefore = cpuSeconds(server.process.pid);
  const clientBefore = process.cpuUsage();
  const result = await runLoad({ ...spec, durationSec: settings.durationSec }, signal);
  const cpuAfter = cpuSeconds(server.process.pid);
  const client = process.cpuUsage(clientBefore);
  const serverCpuPercent = cpuBefore !== undefined && cpuAfter !== undefined && result.durationSec > 0
    ? ((cpuAfter - cpuBefore) / result.durationSec) * 100
    : undefined;
  const clientCpuPercent = result.durationSec > 0 ? ((client.user + client.system) / 1e6 / result.durationSec) * 100 : 0;
  return { server, operation, result, serverCpuPercent, clientCpuPercent };
}

const HEADER: Row = ['op', 'server', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'ok/total', 'errors', 'server CPU %', 'loadgen CPU %'];

function rowOf(m: Measurement): Row {
  const stats = m.result.byOperation[m.operation] ?? m.result.all;
  return [
    m.operation.toUpperCase(),
    m.server.label,
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

function ratioLines(measurements: Measurement[], bare: RunningServer, node: RunningServer): string[] {
  const lines: string[] = [];
  for (const operation of ['get', 'put'] as const) {
    const find = (server: RunningServer) => measurements.find((m) => m.server === server && m.operation === operation);
    const ofBare = find(bare);
    const ofNode = find(node);
    if (ofBare === undefined || ofNode === undefined || ofBare.result.throughputRps === 0) continue;
    const ratio = ofNode.result.throughputRps / ofBare.result.throughputRps;
    const verdict = ratio >= RATIO_GOAL ? 'meets' : 'below';
    lines.push(`${operation.toUpperCase()} throughput dynamokv/bare = ${ratio.toFixed(2)}x (${verdict} the ${RATIO_GOAL}x goal)`);
  }
  return lines;
}

function unexpectedStatuses(measurements: Measurement[]): string[] {
  const notes: string[] = [];
  for (const m of measurements) {
    const stats = m.result.byOperation[m.operation];
    const failed = (stats ? stats.requests - stats.ok : 0) + m.result.errors;
    if (failed > 0) notes.push(`${m.server.label} ${m.operation.toUpperCase()}: ${failed} unexpected answers or errors; statuses ${JSON.stringify(m.result.statusCounts)}`);
  }
  return notes;
}

async function main(): Promise<void> {
  const settings = readSettings();
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
    const bare = await startBareServer(repoRoot, settings.valueBytes);
    servers.push(bare);
    const node = await startDynamoNode(repoRoot, { nodeId: 'b1', dataDir: path.join(dataDir, 'b1'), extraArgs: settings.nodeArgs });
    servers.push(node);

    const contexts = new Map<RunningServer, ContextCache>(servers.map((s) => [s, new ContextCache()]));
    for (const server of servers) {
      process.stderr.write(`preloading ${settings.keys} keys into ${server.label}\n`);
      await preload({ baseUrl: server.baseUrl, bucket: BUCKET, keys: settings.keys, valueBytes: settings.valueBytes, contexts: contexts.get(server) ?? new ContextCache() });
    }

    const measurements: Measurement[] = [];
    for (const operation of ['get', 'put'] as const) {
      for (const server of servers) {
        measurements.push(await measure(server, operation, settings, contexts.get(server) ?? new ContextCache(), abort.signal));
      }
    }

    const facts = machineFacts(repoRoot);
    const ratios = ratioLines(measurements, bare, node);
    const problems = unexpectedStatuses(measurements);
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
  process.stderr.write(`nodeBench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
