/**
 * Cluster benchmark (issue 3): a local 3-node dynamokv cluster (N=3 R=2 W=2) against a bare
 * node:http server that does no work, side by side in the same run, with the same load generator.
 *
 *   npm run bench:cluster -- [--duration 10] [--connections 50] [--keys 10000] [--warmup 3]
 *                            [--nodes 3] [--routing both|any|partition-aware]
 *
 * For each target: preload every key once, then a warm-up (discarded) and a measured phase of a
 * 50/50 GET/PUT mix at fixed concurrency, keys uniform at random, 1 KiB values. The connections
 * are spread over the nodes' client ports, so every node coordinates its share. PUTs carry the
 * newest context seen for their key, so siblings do not pile up. Reports throughput, p50/p99/p99.9
 * latency and server CPU (the cluster's is the sum of its nodes), and the cluster/bare throughput
 * ratio, on stdout and in bench/results/cluster-<date>.md.
 *
 * The cluster is measured with two kinds of load (--routing both, the default): 'any', where each
 * node gets requests for any key (the node forwards writes for keys it is not a replica of), and
 * 'partition-aware', where each node gets requests only for keys it is a primary replica of, as
 * DynamoClient routes them (bench/lib/routing.ts). The bare servers are measured once. Every process it starts is stopped at
 * the end, on error, on ctrl-c and past a time limit; node data lives in a temp dir, removed.
 *
 * With --cpu-prof-node n1, that node runs under `node --cpu-prof` and, once stopped, the ten
 * functions with the most self time in its profile are printed (the profile covers its whole life:
 * start-up, preload and both load phases).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDynamoCluster } from './lib/cluster';
import { formatProfileSummary, summarizeProfileFile } from './lib/cpuProfile';
import { ContextCache, preload, type OperationStats } from './lib/load';
import { BUCKET, COMMON_OPTIONS, COMMON_USAGE, commonSettings, integerOption, measure, startWatchdog, targetOf, unexpectedAnswers, type CommonSettings, type Measurement, type Phase, type Target } from './lib/measure';
import { installExitHandlers, stopProcess } from './lib/processes';
import { keysByReplica, type LoadRouting } from './lib/routing';
import { dateStamp, formatNumber, machineFacts, machineMarkdown, markdownTable, textTable, writeReport, type Row } from './lib/report';
import { startBareFanOut, startBareServer, type RunningServer } from './lib/servers';

const PROGRAM = 'clusterBench';
const repoRoot = path.resolve(__dirname, '..', '..');
const RATIO_GOAL = 0.25;
const MIX: Phase = { name: 'MIX', getFraction: 0.5 };
/** Start-up, joining and preload get this long on top of the phases before the watchdog stops the run. */
const OVERHEAD_SEC_MAX = 240;
/** A profiled node writes its profile while it exits; give it longer than the usual 5 s. */
const PROFILED_STOP_TIMEOUT_MS = 20_000;
const PROFILE_TOP_COUNT = 10;

const USAGE = `Usage: node dist/bench/clusterBench.js [options]
${COMMON_USAGE} (default bench/results/cluster-<date>.md)
  --nodes <n>         cluster nodes (default 3)
  --partitions <n>    partitions Q, a power of two (default 64)
  --replication <n>   replicas N (default 3)
  --r <n>             read quorum (default 2)
  --w <n>             write quorum (default 2)
  --routing <mode>    load on the cluster: both (default), any, partition-aware
  --cpu-prof-node <id>  run this node (e.g. n1) under node --cpu-prof and summarise its profile
  --cpu-prof-dir <dir>  where the profile goes (default bench/results/tmp/profiles)`;

interface Settings extends CommonSettings {
  nodes: number;
  partitions: number;
  replication: number;
  r: number;
  w: number;
  profileNode: string | undefined;
  profileDir: string;
  routings: LoadRouting[];
}

const ROUTINGS: Record<string, LoadRouting[]> = { both: ['any', 'partition-aware'], any: ['any'], 'partition-aware': ['partition-aware'] };

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      ...COMMON_OPTIONS,
      nodes: { type: 'string', default: '3' },
      partitions: { type: 'string', default: '64' },
      replication: { type: 'string', default: '3' },
      r: { type: 'string', default: '2' },
      w: { type: 'string', default: '2' },
      'cpu-prof-node': { type: 'string' },
      routing: { type: 'string', default: 'both' },
      'cpu-prof-dir': { type: 'string', default: path.join('bench', 'results', 'tmp', 'profiles') },
    },
  });
  const integer = (name: string, raw: string | undefined, min: number): number => integerOption(PROGRAM, USAGE, name, raw, min);
  const routings = ROUTINGS[values.routing ?? 'both'];
  if (routings === undefined) {
    process.stderr.write(`${PROGRAM}: --routing must be both, any or partition-aware, got ${String(values.routing)}\n${USAGE}\n`);
    process.exit(2);
  }
  return {
    routings,
    ...commonSettings(PROGRAM, USAGE, values, path.join('bench', 'results', `cluster-${dateStamp()}.md`)),
    nodes: integer('nodes', values.nodes, 1),
    partitions: integer('partitions', values.partitions, 1),
    replication: integer('replication', values.replication, 1),
    r: integer('r', values.r, 1),
    w: integer('w', values.w, 1),
    profileNode: values['cpu-prof-node'],
    profileDir: path.resolve(repoRoot, values['cpu-prof-dir']),
  };
}

const HEADER: Row = ['server', 'op', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'ok/total', 'GET 300s', 'errors', 'server CPU %', 'loadgen CPU %'];

/** The target's label, with the routing when it is not the plain 'any'. */
function labelOf(m: Measurement): string {
  return m.routing === 'any' || m.target.processes.length < 2 ? m.target.label : `${m.target.label}, routed`;
}

function statsRow(m: Measurement, op: string, stats: OperationStats, withCpu: boolean): Row {
  const rps = m.result.durationSec > 0 ? stats.requests / m.result.durationSec : undefined;
  return [
    labelOf(m),
    op,
    formatNumber(rps, 0),
    formatNumber(stats.p50Ms, 2),
    formatNumber(stats.p99Ms, 2),
    formatNumber(stats.p999Ms, 2),
    `${stats.ok}/${stats.requests}`,
    String(stats.siblingReads),
    withCpu ? String(m.result.errors) : '',
    withCpu ? formatNumber(m.serverCpuPercent, 0) : '',
    withCpu ? formatNumber(m.clientCpuPercent, 0) : '',
  ];
}

/** One row for the whole mix, then one per operation. */
function rowsOf(m: Measurement): Row[] {
  const rows = [statsRow(m, `${MIX.name} (all)`, m.result.all, true)];
  for (const operation of ['get', 'put'] as const) {
    const stats = m.result.byOperation[operation];
    if (stats !== undefined) rows.push(statsRow(m, `  ${operation.toUpperCase()}`, stats, false));
  }
  return rows;
}

/** Server CPU-seconds spent per 1000 client operations: how cost grows with cluster size (issue 8). */
function cpuPer1k(m: Measurement): string {
  return m.serverCpuPercent === undefined || m.result.throughputRps <= 0 ? 'n/a' : formatNumber((m.serverCpuPercent / 100 / m.result.throughputRps) * 1000, 3);
}

function summaryLines(bare: Measurement, fanOut: Measurement, clusters: readonly Measurement[]): string[] {
  const lines: string[] = [];
  const bareRps = bare.result.throughputRps;
  const fanOutRps = fanOut.result.throughputRps;
  if (bareRps > 0) lines.push(`MIX throughput bare fan-out/bare = ${(fanOutRps / bareRps).toFixed(2)}x (the floor of replicating every request over HTTP on this machine)`);
  for (const cluster of clusters) {
    const name = `cluster (${cluster.routing})`;
    const rps = cluster.result.throughputRps;
    if (bareRps > 0) {
      const ratio = rps / bareRps;
      lines.push(`MIX throughput ${name}/bare = ${ratio.toFixed(2)}x (${ratio >= RATIO_GOAL ? 'meets' : 'below'} the ${RATIO_GOAL}x goal)`);
    }
    if (fanOutRps > 0) lines.push(`MIX throughput ${name}/bare fan-out = ${(rps / fanOutRps).toFixed(2)}x`);
    if (bare.result.all.p50Ms > 0) lines.push(`MIX p50 latency ${name}/bare = ${(cluster.result.all.p50Ms / bare.result.all.p50Ms).toFixed(1)}x`);
    const perNode = cluster.target.processes.map((proc, index) => `${proc.name} ${formatNumber(cluster.processCpuPercent[index], 0)} %`);
    lines.push(`${name} CPU by node: ${perNode.join(', ')}`);
  }
  const clusterCosts = clusters.map((c) => `${cpuPer1k(c)} for ${c.target.processes.length} nodes (${c.routing})`).join(', ');
  lines.push(`server CPU-seconds per 1k operations: ${cpuPer1k(bare)} bare, ${cpuPer1k(fanOut)} bare fan-out, ${clusterCosts}`);
  const busy = (m: Measurement): string => `${formatNumber(m.machineBusyPercent, 0)} %`;
  lines.push(`machine CPU busy (all ${cpus().length} cores = 100 %): ${busy(bare)} during bare, ${busy(fanOut)} during bare fan-out, ${clusters.map((c) => `${busy(c)} during cluster (${c.routing})`).join(', ')}`);
  return lines;
}

function profileNodeFlags(settings: Settings): Record<string, string[]> | undefined {
  if (settings.profileNode === undefined) return undefined;
  mkdirSync(settings.profileDir, { recursive: true });
  return { [settings.profileNode]: ['--cpu-prof', `--cpu-prof-dir=${settings.profileDir}`, `--cpu-prof-name=${settings.profileNode}-${Date.now()}.cpuprofile`] };
}

/** Summarises the newest profile of the profiled node, once it has stopped and written it. */
function reportProfile(settings: Settings): void {
  if (settings.profileNode === undefined) return;
  const prefix = `${settings.profileNode}-`;
  const files = readdirSync(settings.profileDir).filter((f) => f.startsWith(prefix) && f.endsWith('.cpuprofile')).sort();
  const newest = files.at(-1);
  if (newest === undefined) {
    process.stdout.write(`\nno CPU profile of ${settings.profileNode} found in ${settings.profileDir}\n`);
    return;
  }
  const file = path.join(settings.profileDir, newest);
  process.stdout.write(`\nCPU profile of ${settings.profileNode}: ${path.relative(repoRoot, file)}\n${formatProfileSummary(summarizeProfileFile(file, PROFILE_TOP_COUNT))}\n`);
}

function markdownReport(settings: Settings, load: string, rows: Row[], summary: string[], problems: string[]): string {
  const facts = machineFacts(repoRoot);
  return [
    `# Cluster benchmark, ${facts.date.slice(0, 10)}`,
    '',
    `A local ${settings.nodes}-node dynamokv cluster (N=${settings.replication} R=${settings.r} W=${settings.w}, Q=${settings.partitions}, RocksDB in temp dirs,`,
    'joined with POST /v1/admin/join) against a bare node:http server that does no work (the ceiling) and against as many',
    'bare servers that only fan each request out to the others over HTTP (the floor of replication: no storage, no versions),',
    'measured in the same run with the same load generator (autocannon, in the benchmark process; connections spread over the nodes).',
    'The cluster is measured with load for any key on every node (forwarded when the node is not a replica) and, "routed", with each',
    'node getting only keys it is a primary replica of, as the partition-aware DynamoClient sends them (bench/lib/routing.ts).',
    '',
    `Load: ${load}.`,
    `Node flags: ${settings.nodeArgs.length > 0 ? settings.nodeArgs.join(' ') : '(defaults)'}${settings.profileNode === undefined ? '' : `; ${settings.profileNode} under --cpu-prof`}.`,
    '',
    markdownTable(HEADER, rows),
    '',
    ...summary.map((line) => `- ${line}`),
    ...(problems.length > 0 ? ['', '**Unexpected answers:**', ...problems.map((line) => `- ${line}`)] : []),
    '',
    '## Machine',
    machineMarkdown(facts),
    '',
    'CPU % is user+system time of the process (all threads) over the phase; 100 % = one core. The cluster\'s is the sum',
    'of its nodes. GET 300s counts reads that found siblings.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const settings = readSettings();
  startWatchdog(PROGRAM, OVERHEAD_SEC_MAX + 2 * (settings.warmupSec + settings.durationSec));
  const abort = new AbortController();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'dynamokv-cluster-bench-'));
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
    const bare = targetOf(bareServer);
    // The replication floor: as many bare servers as nodes, each fanning requests out to N-1 of
    // the others and answering after as many peer replies as the quorum needs beyond itself.
    const fanOutServers = await startBareFanOut(repoRoot, settings.valueBytes, settings.nodes, Math.max(1, Math.max(settings.r, settings.w) - 1), settings.replication);
    servers.push(...fanOutServers);
    const fanOut: Target = { label: fanOutServers[0]!.label, baseUrls: fanOutServers.map((s) => s.baseUrl), processes: fanOutServers.map((s) => s.process) };
    const { target: cluster } = await startDynamoCluster(repoRoot, {
      nodes: settings.nodes,
      dataDir,
      partitions: settings.partitions,
      replication: settings.replication,
      r: settings.r,
      w: settings.w,
      extraArgs: settings.nodeArgs,
      nodeFlags: profileNodeFlags(settings),
    }, servers);
    process.stderr.write(`cluster up: ${cluster.baseUrls.join(' ')}\n`);

    const measurements: Measurement[] = [];
    for (const target of [bare, fanOut] as Target[]) {
      const contexts = new ContextCache();
      process.stderr.write(`preloading ${settings.keys} keys into ${target.label}\n`);
      await preload({ baseUrls: target.baseUrls, bucket: BUCKET, keys: settings.keys, valueBytes: settings.valueBytes, contexts }, abort.signal);
      measurements.push(await measure(target, MIX, settings, contexts, abort.signal));
    }
    const [ofBare, ofFanOut] = measurements as [Measurement, Measurement];
    const contexts = new ContextCache();
    process.stderr.write(`preloading ${settings.keys} keys into ${cluster.label}\n`);
    await preload({ baseUrls: cluster.baseUrls, bucket: BUCKET, keys: settings.keys, valueBytes: settings.valueBytes, contexts }, abort.signal);
    const clusters: Measurement[] = [];
    for (const routing of settings.routings) {
      const keysByUrl = routing === 'any' ? undefined : await keysByReplica(cluster.baseUrls, BUCKET, settings.keys);
      clusters.push(await measure(cluster, MIX, settings, contexts, abort.signal, keysByUrl));
    }
    measurements.push(...clusters);

    const rows = measurements.flatMap(rowsOf);
    const summary = summaryLines(ofBare, ofFanOut, clusters);
    const problems = unexpectedAnswers(measurements);
    const load = `${settings.connections} connections (closed loop, spread over ${cluster.baseUrls.length} nodes for the cluster), ` +
      `${Math.round(MIX.getFraction * 100)}/${Math.round((1 - MIX.getFraction) * 100)} GET/PUT, ${settings.keys} keys uniform, ` +
      `${settings.valueBytes}-byte values, ${settings.warmupSec} s warm-up + ${settings.durationSec} s measured`;
    process.stdout.write(`\n${load}\n\n${textTable(HEADER, rows)}\n\n${summary.join('\n')}\n`);
    if (problems.length > 0) process.stdout.write(`\nWARNING:\n${problems.join('\n')}\n`);
    const written = writeReport(repoRoot, settings.outFile, markdownReport(settings, load, rows, summary, problems));
    process.stdout.write(`\nreport written to ${written}\n`);
  } finally {
    await Promise.all(servers.map((server) => stopProcess(server.process, server.process.name === settings.profileNode ? PROFILED_STOP_TIMEOUT_MS : undefined)));
    removeData();
  }
  reportProfile(settings);
}

main().catch((error: unknown) => {
  process.stderr.write(`${PROGRAM} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
