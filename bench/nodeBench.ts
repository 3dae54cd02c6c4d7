/**
 * Single-node benchmark (issue 2): one dynamokv node against a bare node:http server that does no
 * work, side by side in the same run, with the same load generator and the same key/value mix.
 *
 *   npm run bench:node -- [--duration 10] [--connections 50] [--keys 10000] [--warmup 3]
 *   npm run bench:node -- --floor --cpu-prof          # add the floors; profile the node
 *   npm run bench:node -- --baseline /tmp/old         # also a node from an older build's dist/
 *   make bench BENCH_ARGS="--duration 5"
 *
 * For each server: preload every key once, then for GET and for PUT a warm-up phase (discarded)
 * and a measured phase of closed-loop load at fixed concurrency with keys uniform at random and
 * 1 KiB values. Reports throughput, p50/p99/p99.9 latency and server CPU, and the dynamokv/bare
 * throughput ratio, on stdout and in bench/results/node-<date>.md. Every process it starts is
 * stopped at the end, on error and on ctrl-c; the node's data lives in a temp dir that is removed.
 *
 * Options beyond the common ones, for finding where the time goes:
 * - --floor adds two floors (bench/lib/floorServer.ts): fastify + one RocksDB get/put per request,
 *   and node:http + the same, so the report shows what HTTP and RocksDB alone cost on this stack.
 * - --baseline <root> adds a node started from <root>/dist (a copy of an earlier build), so a
 *   change is measured before and after in the same run, against the same bare ceiling.
 * - --cpu-prof runs the node under node --cpu-prof and puts its top functions in the report.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ContextCache, preload } from './lib/load';
import { BUCKET, COMMON_OPTIONS, COMMON_USAGE, commonSettings, measure, startWatchdog, targetOf, unexpectedAnswers, type CommonSettings, type Measurement, type Phase, type Target } from './lib/measure';
import { formatProfileSummary, summarizeProfileFile } from './lib/cpuProfile';
import { freePort, installExitHandlers, startProcess, stopProcess, waitForHttp } from './lib/processes';
import { dateStamp, formatNumber, machineFacts, machineMarkdown, markdownTable, textTable, writeReport, type Row } from './lib/report';
import { HOST, startBareServer, startDynamoNode, type RunningServer } from './lib/servers';

const PROGRAM = 'nodeBench';
const repoRoot = path.resolve(__dirname, '..', '..');
const RATIO_GOAL = 0.5;
const ALL_PHASES: readonly Phase[] = [
  { name: 'GET', getFraction: 1 },
  { name: 'PUT', getFraction: 0 },
];
/** Start-up and preload get this long on top of the phases before the watchdog stops the run. */
const OVERHEAD_SEC_MAX = 180;
/** A profiled node writes its profile while it exits; give it longer than the usual 5 s. */
const PROFILED_STOP_TIMEOUT_MS = 60_000;
const PROFILE_TOP_COUNT = 25;
const ROUNDS_MAX = 20;

const USAGE = `Usage: node dist/bench/nodeBench.js [options]
${COMMON_USAGE} (default bench/results/node-<date>.md)
  --phases <list>     GET,PUT (default both)
  --rounds <n>        measure each phase n times, the targets taking turns, and report the
                      median of the per-round ratios to bare (default 1; use it on a busy machine)
  --floor             also measure the floors: fastify + RocksDB, node:http + RocksDB
  --baseline <root>   also measure a node started from <root>/dist (an earlier build)
  --cpu-prof          run the node under node --cpu-prof and summarise the profile
  --cpu-prof-dir <d>  where the profile goes (default bench/results/tmp/profiles)`;

interface Settings extends CommonSettings {
  phases: readonly Phase[];
  rounds: number;
  floor: boolean;
  baselineRoot: string | undefined;
  cpuProf: boolean;
  profileDir: string;
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      ...COMMON_OPTIONS,
      phases: { type: 'string', default: 'GET,PUT' },
      rounds: { type: 'string', default: '1' },
      floor: { type: 'boolean', default: false },
      baseline: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'cpu-prof-dir': { type: 'string', default: path.join('bench', 'results', 'tmp', 'profiles') },
    },
  });
  const common = commonSettings(PROGRAM, USAGE, values, path.join('bench', 'results', `node-${dateStamp()}.md`));
  const names = values.phases.split(',').map((p) => p.trim().toUpperCase());
  const phases = ALL_PHASES.filter((p) => names.includes(p.name));
  if (phases.length === 0 || phases.length !== names.length) {
    process.stderr.write(`${PROGRAM}: --phases takes GET and/or PUT, got ${values.phases}\n${USAGE}\n`);
    process.exit(2);
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > ROUNDS_MAX) {
    process.stderr.write(`${PROGRAM}: --rounds must be an integer from 1 to ${ROUNDS_MAX}, got ${values.rounds}\n${USAGE}\n`);
    process.exit(2);
  }
  return {
    ...common,
    phases,
    rounds,
    floor: values.floor,
    baselineRoot: values.baseline === undefined ? undefined : path.resolve(values.baseline),
    cpuProf: values['cpu-prof'],
    profileDir: path.resolve(repoRoot, values['cpu-prof-dir']),
  };
}

/** A floor server (bench/lib/floorServer.ts) on a free port, its RocksDB under `dataDir`. */
async function startFloorServer(framework: 'fastify' | 'http', dataDir: string, nodeFlags: readonly string[] = []): Promise<RunningServer> {
  const port = await freePort(HOST);
  const script = path.join(repoRoot, 'dist', 'bench', 'lib', 'floorServer.js');
  const proc = startProcess({
    name: `floor-${framework}`,
    command: process.execPath,
    args: [...nodeFlags, script, '--host', HOST, '--port', String(port), '--data-dir', dataDir, '--framework', framework],
    cwd: repoRoot,
  });
  const baseUrl = `http://${HOST}:${port}`;
  await waitForHttp(proc, `${baseUrl}/`);
  return { label: `floor ${framework} + RocksDB`, baseUrl, process: proc };
}

/** The summary of the profiled node's newest profile, or a line saying there was none. */
function profileSummary(settings: Settings, prefix: string): string {
  const newest = readdirSync(settings.profileDir).filter((f) => f.startsWith(prefix) && f.endsWith('.cpuprofile')).sort().at(-1);
  if (newest === undefined) return `no CPU profile found in ${settings.profileDir}`;
  const file = path.join(settings.profileDir, newest);
  return `${path.relative(repoRoot, file)}\n${formatProfileSummary(summarizeProfileFile(file, PROFILE_TOP_COUNT))}`;
}

/** A measurement and the round it belongs to (1-based). */
interface RoundMeasurement extends Measurement {
  readonly round: number;
}

const HEADER: Row = ['op', 'round', 'server', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'ok/total', 'errors', 'server CPU %', 'loadgen CPU %'];

function rowOf(m: RoundMeasurement): Row {
  const stats = m.result.all;
  return [
    m.phase.name,
    String(m.round),
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

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/**
 * Every target's throughput over the bare server's in the same round, per phase (the median over
 * rounds when there are several), and its server CPU per request; the node's line carries the goal.
 */
function ratioLines(measurements: readonly RoundMeasurement[], settings: Settings, bare: Target, node: Target, others: readonly Target[]): string[] {
  const lines: string[] = [];
  for (const phase of settings.phases) {
    for (const target of [node, ...others]) {
      const ratios: number[] = [];
      let cpuSeconds = 0;
      let requests = 0;
      for (let round = 1; round <= settings.rounds; round++) {
        const find = (t: Target) => measurements.find((m) => m.target === t && m.phase === phase && m.round === round);
        const ofBare = find(bare);
        const ofTarget = find(target);
        if (ofBare === undefined || ofTarget === undefined || ofBare.result.throughputRps === 0) continue;
        ratios.push(ofTarget.result.throughputRps / ofBare.result.throughputRps);
        cpuSeconds += ((ofTarget.serverCpuPercent ?? Number.NaN) / 100) * ofTarget.result.durationSec;
        requests += ofTarget.result.all.requests;
      }
      if (ratios.length === 0) continue;
      const ratio = median(ratios);
      const goal = target === node ? ` (${ratio >= RATIO_GOAL ? 'meets' : 'below'} the ${RATIO_GOAL}x goal)` : '';
      const spread = ratios.length > 1 ? ` (median of ${ratios.length} rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')})` : '';
      const cpuPerRequestUs = requests > 0 && Number.isFinite(cpuSeconds) ? formatNumber((cpuSeconds / requests) * 1e6, 0) : 'n/a';
      lines.push(`${phase.name} throughput ${target.label}/bare = ${ratio.toFixed(2)}x${goal}${spread}; server CPU ${cpuPerRequestUs} us per request`);
    }
  }
  return lines;
}

async function main(): Promise<void> {
  const settings = readSettings();
  const targetCount = 2 + (settings.floor ? 2 : 0) + (settings.baselineRoot === undefined ? 0 : 1);
  startWatchdog(PROGRAM, OVERHEAD_SEC_MAX + settings.rounds * settings.phases.length * targetCount * (settings.warmupSec + settings.durationSec));
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
    // With --cpu-prof the node and the fastify floor are profiled, so their profiles can be compared.
    const stamp = Date.now();
    const profiled = { node: `b1-${stamp}`, floor: `floor-fastify-${stamp}` };
    if (settings.cpuProf) mkdirSync(settings.profileDir, { recursive: true });
    const profileFlags = (prefix: string): string[] => (settings.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${settings.profileDir}`, `--cpu-prof-name=${prefix}.cpuprofile`] : []);
    const nodeServer = await startDynamoNode(repoRoot, { nodeId: 'b1', dataDir: path.join(dataDir, 'b1'), extraArgs: settings.nodeArgs, nodeFlags: profileFlags(profiled.node) });
    servers.push(nodeServer);
    const others: RunningServer[] = [];
    if (settings.baselineRoot !== undefined) {
      const baseline = await startDynamoNode(settings.baselineRoot, { nodeId: 'b0', dataDir: path.join(dataDir, 'b0'), extraArgs: settings.nodeArgs });
      others.push({ ...baseline, label: 'dynamokv baseline b0' });
    }
    if (settings.floor) {
      others.push(await startFloorServer('fastify', path.join(dataDir, 'floor-fastify'), profileFlags(profiled.floor)));
      others.push(await startFloorServer('http', path.join(dataDir, 'floor-http')));
    }
    servers.push(...others);
    const bare = targetOf(bareServer);
    const node = targetOf(nodeServer);
    const otherTargets = others.map(targetOf);
    const targets = [bare, node, ...otherTargets];

    const contexts = new Map<Target, ContextCache>(targets.map((t) => [t, new ContextCache()]));
    for (const target of targets) {
      process.stderr.write(`preloading ${settings.keys} keys into ${target.label}\n`);
      await preload({ baseUrls: target.baseUrls, bucket: BUCKET, keys: settings.keys, valueBytes: settings.valueBytes, contexts: contexts.get(target) ?? new ContextCache() }, abort.signal);
    }

    // Rounds interleave the targets, so a change in what else the machine runs hits all of them.
    const measurements: RoundMeasurement[] = [];
    for (const phase of settings.phases) {
      for (let round = 1; round <= settings.rounds; round++) {
        for (const target of targets) {
          measurements.push({ ...(await measure(target, phase, settings, contexts.get(target) ?? new ContextCache(), abort.signal)), round });
        }
      }
    }

    const facts = machineFacts(repoRoot);
    const ratios = ratioLines(measurements, settings, bare, node, otherTargets);
    const problems = unexpectedAnswers(measurements);
    const rows = measurements.map(rowOf);
    const load = `${settings.connections} connections, closed loop, ${settings.keys} keys uniform, ${settings.valueBytes}-byte values, ` +
      `${settings.warmupSec} s warm-up + ${settings.durationSec} s measured per phase and target${settings.rounds > 1 ? `, ${settings.rounds} rounds` : ''}`;

    process.stdout.write(`\n${load}\n\n${textTable(HEADER, rows)}\n\n${ratios.join('\n')}\n`);
    if (problems.length > 0) process.stdout.write(`\nWARNING:\n${problems.join('\n')}\n`);

    const markdown = [
      `# Single-node benchmark, ${facts.date.slice(0, 10)}`,
      '',
      'dynamokv node (one process, RocksDB in a temp dir) against a bare node:http server that does no work (the ceiling),',
      'measured in the same run with the same load generator (autocannon, in the benchmark process).',
      ...(settings.floor ? ['The floors (bench/lib/floorServer.ts) serve the same routes with one RocksDB get or put per request and nothing else,',
        'through fastify and through node:http: what HTTP and storage alone cost on this stack.'] : []),
      ...(settings.baselineRoot === undefined ? [] : [`The baseline node runs an earlier build (${settings.baselineRoot}/dist) in the same run.`]),
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
    // Profiles are written while a process exits, so they are read after stopping it.
    await Promise.all(servers.map((server) => stopProcess(server.process, settings.cpuProf ? PROFILED_STOP_TIMEOUT_MS : undefined)));
    const profiles = !settings.cpuProf ? [] : [
      `dynamokv b1: ${profileSummary(settings, profiled.node)}`,
      ...(settings.floor ? [`floor fastify + RocksDB: ${profileSummary(settings, profiled.floor)}`] : []),
    ];
    for (const profile of profiles) process.stdout.write(`\nCPU profile (whole life: start, preload, warm-ups, phases) of ${profile}\n`);
    const profileSection = profiles.length === 0 ? '' : `\n## CPU profiles\n\nEach covers the process's whole life (start-up, preload, warm-ups and phases); self time.\n\n${profiles.map((p) => `\`\`\`\n${p}\n\`\`\``).join('\n\n')}\n`;
    const written = writeReport(repoRoot, settings.outFile, markdown + profileSection);
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
