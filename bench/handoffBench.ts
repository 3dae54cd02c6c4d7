/**
 * Data-movement benchmark (issue 4), two sections measured in one run:
 *
 * handoff: a 3-node cluster (N=3 R=2 W=2, Q=64) is loaded with 200k keys of 1 KiB; a closed-loop
 *   50/50 read/write load measures p99 "before"; then a 4th node joins and the same load runs
 *   until the change commits ("during"). Stream rate = object bytes the senders streamed
 *   (dynamokv_handoff_bytes_total) / time from the join to the commit, plus the receiver's own
 *   view (GET /v1/handoff). Goals: >= 40 MB/s, p99 during <= 2x p99 before.
 * anti-entropy: the same foreground load against two 3-node clusters, one with anti-entropy off
 *   and one exchanging every 200 ms, each after a replica missed writes while stopped, so the
 *   exchanges have real work (tree builds and repairs) while p99 is measured.
 *
 *   npm run bench:handoff -- [--keys 200000] [--value-bytes 1024] [--partitions 64]
 *     [--connections 16] [--phase-sec 10] [--sections handoff,anti-entropy] [--ae-keys 50000]
 *     [--ae-divergent-keys 10000] [--cpu-prof-node n4] [--node-arg=...] [--out file]
 *
 * Every process it starts is stopped at the end, on error, on ctrl-c and past a time limit; node
 * data lives in a temp dir that is removed. Report: stdout and bench/results/handoff-<date>.md.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startDynamoCluster } from './lib/cluster';
import { formatProfileSummary, summarizeProfileFile } from './lib/cpuProfile';
import { ContextCache, preload, runLoad, type LoadResult } from './lib/load';
import { BUCKET, integerOption, startWatchdog } from './lib/measure';
import { cpuSeconds, installExitHandlers, machineCpuSeconds, stopProcess } from './lib/processes';
import { dateStamp, formatNumber, machineFacts, machineMarkdown, markdownTable, textTable, writeReport, type Row } from './lib/report';
import { HOST, startDynamoNode, type RunningServer } from './lib/servers';

const PROGRAM = 'handoffBench';
const repoRoot = path.resolve(__dirname, '..', '..');
const RATE_GOAL_MB_PER_S = 40;
const P99_RATIO_GOAL = 2;
const MIB = 1024 * 1024;
const POLL_INTERVAL_MS = 250;
const PROFILED_STOP_TIMEOUT_MS = 20_000;
const WATCHDOG_SEC = 1800;

const USAGE = `Usage: node dist/bench/handoffBench.js [options]
  --keys <n>               keys loaded before the join (default 200000)
  --value-bytes <n>        value size (default 1024)
  --partitions <n>         Q (default 64)
  --connections <n>        foreground closed-loop connections (default 16)
  --phase-sec <s>          seconds of each measured foreground phase (default 10)
  --handoff-max-sec <s>    longest wait for the join to commit (default 600)
  --sections <list>        handoff,anti-entropy (default both)
  --ae-keys <n>            keys of the anti-entropy section (default 50000)
  --ae-divergent-keys <n>  keys a stopped replica misses there (default 10000)
  --cpu-prof-node <id>     run this node (n1..n4) under node --cpu-prof and summarise its profile
  --join-load <on|off>     foreground load before and during the join (default on); off measures
                           the stream alone: its rate and CPU seconds per MiB on senders and receiver
  --node-arg <flag>        extra flag for every node, repeatable
  --out <file>             markdown report (default bench/results/handoff-<date>.md)`;

interface Settings {
  keys: number;
  valueBytes: number;
  partitions: number;
  connections: number;
  phaseSec: number;
  handoffMaxSec: number;
  sections: Set<string>;
  aeKeys: number;
  aeDivergentKeys: number;
  profileNode: string | undefined;
  /** Whether the foreground load runs before and during the join (off: the stream alone, for its CPU cost). */
  joinLoad: boolean;
  nodeArgs: string[];
  outFile: string;
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      keys: { type: 'string', default: '200000' },
      'value-bytes': { type: 'string', default: '1024' },
      partitions: { type: 'string', default: '64' },
      connections: { type: 'string', default: '16' },
      'phase-sec': { type: 'string', default: '10' },
      'handoff-max-sec': { type: 'string', default: '600' },
      sections: { type: 'string', default: 'handoff,anti-entropy' },
      'ae-keys': { type: 'string', default: '50000' },
      'ae-divergent-keys': { type: 'string', default: '10000' },
      'cpu-prof-node': { type: 'string' },
      'join-load': { type: 'string', default: 'on' },
      'node-arg': { type: 'string', multiple: true, default: [] },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const integer = (name: string, raw: string | undefined, min: number): number => integerOption(PROGRAM, USAGE, name, raw, min);
  return {
    keys: integer('keys', values.keys, 1),
    valueBytes: integer('value-bytes', values['value-bytes'], 1),
    partitions: integer('partitions', values.partitions, 1),
    connections: integer('connections', values.connections, 1),
    phaseSec: integer('phase-sec', values['phase-sec'], 1),
    handoffMaxSec: integer('handoff-max-sec', values['handoff-max-sec'], 10),
    sections: new Set(values.sections.split(',').map((s) => s.trim())),
    aeKeys: integer('ae-keys', values['ae-keys'], 1),
    aeDivergentKeys: integer('ae-divergent-keys', values['ae-divergent-keys'], 1),
    profileNode: values['cpu-prof-node'],
    joinLoad: onOff('join-load', values['join-load']),
    nodeArgs: values['node-arg'],
    outFile: values.out ?? path.join('bench', 'results', `handoff-${dateStamp()}.md`),
  };
}

function onOff(name: string, raw: string): boolean {
  if (raw === 'on' || raw === 'off') return raw === 'on';
  process.stderr.write(`${PROGRAM}: --${name} must be on or off\n${USAGE}\n`);
  process.exit(2);
}

// ---- small HTTP helpers ----

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return (await response.json()) as T;
}

/** The sum of one unlabelled counter or gauge over some nodes' /metrics. */
async function metricTotal(baseUrls: readonly string[], name: string): Promise<number> {
  let total = 0;
  for (const url of baseUrls) {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    total += line === undefined ? 0 : Number(line.slice(name.length + 1));
  }
  return total;
}

interface RingAnswer {
  members: { id: string; peerUrl: string; state: string; up: boolean }[];
  pending: unknown;
}

interface TransferAnswer {
  transfers: { role?: string; keysDone?: number; bytesDone?: number }[];
}

const cpuTotal = (processes: readonly RunningServer[]): number => processes.reduce((sum, s) => sum + (cpuSeconds(s.process.pid) ?? 0), 0);

/**
 * CPU seconds so far of the measured servers, of this process (the load generator) and of the
 * whole machine, so a phase can say how much CPU went to processes outside the benchmark
 * (other work on a shared machine), which is what makes runs differ.
 */
interface CpuSample {
  readonly servers: number;
  readonly self: number;
  readonly machine: number;
}

function cpuSample(servers: readonly RunningServer[]): CpuSample {
  const usage = process.cpuUsage();
  return { servers: cpuTotal(servers), self: (usage.user + usage.system) / 1e6, machine: machineCpuSeconds()?.busySec ?? 0 };
}

/** Percent of one core over `seconds`: servers, and everything else on the machine besides the benchmark. */
function cpuPercents(before: CpuSample, after: CpuSample, seconds: number): { serverCpuPercent: number; otherCpuPercent: number } {
  const span = Math.max(0.001, seconds);
  const servers = after.servers - before.servers;
  const other = after.machine - before.machine - servers - (after.self - before.self);
  return { serverCpuPercent: (servers / span) * 100, otherCpuPercent: Math.max(0, (other / span) * 100) };
}

// ---- one measured foreground phase ----

interface Phase {
  readonly label: string;
  readonly result: LoadResult;
  readonly serverCpuPercent: number;
  /** CPU used by processes outside the benchmark (other work on the machine), 100 = one core. */
  readonly otherCpuPercent: number;
}

function loadSpec(settings: Settings, baseUrls: readonly string[], keys: number, contexts: ContextCache, durationSec: number) {
  return { baseUrls, bucket: BUCKET, keys, valueBytes: settings.valueBytes, connections: settings.connections, getFraction: 0.5, contexts, durationSec };
}

async function foreground(label: string, settings: Settings, nodes: readonly RunningServer[], keys: number, contexts: ContextCache, signal: AbortSignal): Promise<Phase> {
  process.stderr.write(`  ${label}: ${settings.phaseSec} s of load\n`);
  await runLoad(loadSpec(settings, nodes.map((n) => n.baseUrl), keys, contexts, 2), signal);
  const before = cpuSample(nodes);
  const result = await runLoad(loadSpec(settings, nodes.map((n) => n.baseUrl), keys, contexts, settings.phaseSec), signal);
  return { label, result, ...cpuPercents(before, cpuSample(nodes), result.durationSec) };
}

const HEADER: Row = ['phase', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'ok/total', 'server CPU %', 'other CPU %'];

function phaseRow(p: Phase): Row {
  const r = p.result.all;
  return [p.label, formatNumber(p.result.throughputRps, 0), formatNumber(r.p50Ms, 2), formatNumber(r.p99Ms, 2), formatNumber(r.p999Ms, 2), `${r.ok}/${r.requests}`, formatNumber(p.serverCpuPercent, 0), formatNumber(p.otherCpuPercent, 0)];
}

// ---- starting clusters ----

function clusterArgs(settings: Settings, extra: string[]): string[] {
  return ['--log-level', 'warn', ...settings.nodeArgs, ...extra];
}

function profileFlags(settings: Settings, dir: string): Record<string, string[]> | undefined {
  if (settings.profileNode === undefined) return undefined;
  mkdirSync(dir, { recursive: true });
  return { [settings.profileNode]: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${settings.profileNode}-${Date.now()}.cpuprofile`] };
}

async function startThree(settings: Settings, dataDir: string, extra: string[], started: RunningServer[], nodeFlags?: Record<string, string[]>): Promise<RunningServer[]> {
  const { nodes } = await startDynamoCluster(repoRoot, { nodes: 3, dataDir, partitions: settings.partitions, replication: 3, r: 2, w: 2, extraArgs: clusterArgs(settings, extra), nodeFlags }, started);
  return [...nodes];
}

/** The seed address (n1's peer endpoint) and the flags a further node needs to join the same cluster. */
async function joinFlags(settings: Settings, n1: RunningServer): Promise<{ seed: string; args: string[] }> {
  const ring = await getJson<RingAnswer>(`${n1.baseUrl}/v1/ring`);
  const seed = new URL(ring.members.find((m) => m.id === 'n1')!.peerUrl).host;
  return { seed, args: ['--partitions', String(settings.partitions), '--replication', '3', '--r', '2', '--w', '2', '--seeds', seed] };
}

// ---- the handoff section ----

interface HandoffOutcome {
  /** before and during; empty with --join-load off. */
  readonly phases: Phase[];
  readonly preloadKeysPerSec: number;
  readonly handoffSec: number;
  readonly bytesStreamed: number;
  readonly keysStreamed: number;
  readonly receiverBytes: number;
  readonly peakReceiverMBps: number;
  /** CPU seconds from the join to the commit: the senders (n1..n3, foreground included when it runs) and the receiver (n4). */
  readonly senderCpuSec: number;
  readonly receiverCpuSec: number;
  /** CPU of processes outside the benchmark from the join to the commit, 100 = one core. */
  readonly otherCpuPercent: number;
  /** Seconds from the join to the receiver's first reported byte, and to its last growth (poll granularity). */
  readonly firstByteSec: number;
  readonly lastGrowthSec: number;
}

interface StreamWatch {
  readonly committedAt: number;
  readonly receiverBytes: number;
  readonly peakReceiverMBps: number;
  readonly firstByteSec: number;
  readonly lastGrowthSec: number;
}

/** Polls the receiver's GET /v1/handoff until its transfers are gone (the change committed). */
async function watchStream(settings: Settings, n4: RunningServer, joinedAt: number, signal: AbortSignal): Promise<StreamWatch> {
  let receiverBytes = 0;
  let peakReceiverMBps = 0;
  let committedAt = Date.now();
  // When the receiver first and last reported progress: the stream itself, as opposed to the
  // time before it starts (the join, the senders' next tick) and after it (the commit).
  let firstByteAt: number | undefined;
  let lastGrowthAt = joinedAt;
  for (let last = { atMs: Date.now(), bytes: 0 }; !signal.aborted; await sleep(POLL_INTERVAL_MS)) {
    const view = await getJson<TransferAnswer>(`${n4.baseUrl}/v1/handoff`);
    if (view.transfers.length === 0) {
      committedAt = Date.now();
      break;
    }
    const bytes = view.transfers.reduce((sum, t) => sum + (t.role === 'receiving' ? (t.bytesDone ?? 0) : 0), 0);
    const now = Date.now();
    if (bytes > 0 && firstByteAt === undefined) firstByteAt = now;
    if (bytes > receiverBytes) lastGrowthAt = now;
    if (bytes > last.bytes && now - last.atMs >= 1000) {
      peakReceiverMBps = Math.max(peakReceiverMBps, (bytes - last.bytes) / MIB / ((now - last.atMs) / 1000));
      last = { atMs: now, bytes };
    }
    receiverBytes = Math.max(receiverBytes, bytes);
    if (now - joinedAt > settings.handoffMaxSec * 1000) throw new Error(`the join did not commit within ${settings.handoffMaxSec} s`);
  }
  return { committedAt, receiverBytes, peakReceiverMBps, firstByteSec: ((firstByteAt ?? committedAt) - joinedAt) / 1000, lastGrowthSec: (lastGrowthAt - joinedAt) / 1000 };
}

async function handoffSection(settings: Settings, dataDir: string, started: RunningServer[], signal: AbortSignal, profileDir: string): Promise<HandoffOutcome> {
  process.stderr.write(`handoff: starting 3 nodes, loading ${settings.keys} keys of ${settings.valueBytes} bytes\n`);
  const flags = profileFlags(settings, profileDir);
  const three = await startThree(settings, path.join(dataDir, 'handoff'), [], started, flags);
  const { seed, args } = await joinFlags(settings, three[0]!);
  const n4 = await startDynamoNode(repoRoot, { nodeId: 'n4', dataDir: path.join(dataDir, 'handoff', 'n4'), extraArgs: [...args, ...clusterArgs(settings, [])], nodeFlags: flags?.n4 });
  started.push(n4);
  const contexts = new ContextCache();
  const preloadStart = Date.now();
  await preload({ baseUrls: three.map((n) => n.baseUrl), bucket: BUCKET, keys: settings.keys, valueBytes: settings.valueBytes, contexts }, signal, 64);
  const preloadKeysPerSec = settings.keys / ((Date.now() - preloadStart) / 1000);
  const before = settings.joinLoad ? await foreground('before the join (3 nodes)', settings, three, settings.keys, contexts, signal) : undefined;

  const senders = three.map((n) => n.baseUrl);
  const bytesBefore = await metricTotal(senders, 'dynamokv_handoff_bytes_total');
  const keysBefore = await metricTotal(senders, 'dynamokv_handoff_keys_total');
  process.stderr.write(`  joining n4 through ${seed}${settings.joinLoad ? '' : ' (no foreground load)'}\n`);
  const cpuBefore = cpuSample(three);
  const allBefore = cpuSample([...three, n4]);
  const receiverCpuBefore = cpuSeconds(n4.process.pid) ?? 0;
  const joinedAt = Date.now();
  const join = await fetch(`${n4.baseUrl}/v1/admin/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ seed }) });
  if (join.status !== 200) throw new Error(`join of n4 answered ${join.status}: ${(await join.text()).slice(0, 300)}`);
  // The load runs until the change commits (or the limit), so "during" covers the whole stream.
  const stopLoad = new AbortController();
  signal.addEventListener('abort', () => stopLoad.abort(), { once: true });
  const during = settings.joinLoad ? runLoad(loadSpec(settings, senders, settings.keys, contexts, settings.handoffMaxSec), stopLoad.signal) : undefined;
  const watch = await watchStream(settings, n4, joinedAt, signal);
  stopLoad.abort();
  const duringResult = await during;
  const cpuAfter = cpuSample(three);
  const allAfter = cpuSample([...three, n4]);
  const { otherCpuPercent } = cpuPercents(allBefore, allAfter, (watch.committedAt - joinedAt) / 1000);
  const receiverCpuSec = (cpuSeconds(n4.process.pid) ?? 0) - receiverCpuBefore;
  const phases: Phase[] = [];
  if (before !== undefined && duringResult !== undefined) {
    // Server CPU counts n1..n3 as before the join; the receiver's is reported on its own, and is not "other".
    const serverCpuPercent = cpuPercents(cpuBefore, cpuAfter, duringResult.durationSec).serverCpuPercent;
    phases.push(before, { label: 'during the join (stream to n4)', result: duringResult, serverCpuPercent, otherCpuPercent: cpuPercents(allBefore, allAfter, duringResult.durationSec).otherCpuPercent });
  }
  const bytesStreamed = (await metricTotal(senders, 'dynamokv_handoff_bytes_total')) - bytesBefore;
  const keysStreamed = (await metricTotal(senders, 'dynamokv_handoff_keys_total')) - keysBefore;
  const { committedAt, ...rest } = watch;
  return { phases, preloadKeysPerSec, handoffSec: (committedAt - joinedAt) / 1000, bytesStreamed, keysStreamed, senderCpuSec: cpuAfter.servers - cpuBefore.servers, receiverCpuSec, otherCpuPercent, ...rest };
}

// ---- the anti-entropy section ----

interface AeOutcome {
  readonly phase: Phase;
  readonly keysRepaired: number;
  readonly exchanges: number;
}

async function antiEntropyRun(settings: Settings, dataDir: string, intervalMs: number, started: RunningServer[], signal: AbortSignal): Promise<AeOutcome> {
  const label = intervalMs === 0 ? 'anti-entropy off' : `anti-entropy every ${intervalMs} ms`;
  process.stderr.write(`${label}: starting 3 nodes, loading ${settings.aeKeys} keys\n`);
  const nodes = await startThree(settings, dataDir, ['--anti-entropy-interval-ms', String(intervalMs)], started);
  const contexts = new ContextCache();
  await preload({ baseUrls: nodes.map((n) => n.baseUrl), bucket: BUCKET, keys: settings.aeKeys, valueBytes: settings.valueBytes, contexts }, signal, 64);
  // n3 misses overwrites of the first keys while stopped; with N=3 on 3 nodes there is no
  // fallback, so only anti-entropy (and read repair of keys the load happens to read) heals it.
  const n3 = nodes[2]!;
  const ring = await getJson<RingAnswer>(`${nodes[0]!.baseUrl}/v1/ring`);
  const n3Peer = new URL(ring.members.find((m) => m.id === 'n3')!.peerUrl);
  await stopProcess(n3.process);
  await preload({ baseUrls: nodes.slice(0, 2).map((n) => n.baseUrl), bucket: BUCKET, keys: settings.aeDivergentKeys, valueBytes: settings.valueBytes, contexts }, signal, 32);
  const { args } = await joinFlags(settings, nodes[0]!);
  const restarted = await startDynamoNode(repoRoot, {
    nodeId: 'n3',
    dataDir: path.join(dataDir, 'n3'),
    port: Number(new URL(n3.baseUrl).port),
    peerPort: Number(n3Peer.port),
    extraArgs: [...args, ...clusterArgs(settings, ['--anti-entropy-interval-ms', String(intervalMs)])],
  });
  started.push(restarted);
  const live = [nodes[0]!, nodes[1]!, restarted];
  for (let i = 0; i < 100; i++) {
    const view = await getJson<RingAnswer>(`${nodes[0]!.baseUrl}/v1/ring`);
    if (view.members.every((m) => m.up)) break;
    await sleep(200);
  }
  const urls = live.map((n) => n.baseUrl);
  const repairedBefore = await metricTotal(urls, 'dynamokv_anti_entropy_keys_repaired_total');
  const exchangesBefore = await metricTotal(urls, 'dynamokv_anti_entropy_exchanges_total');
  const phase = await foreground(label, settings, live, settings.aeKeys, contexts, signal);
  const keysRepaired = (await metricTotal(urls, 'dynamokv_anti_entropy_keys_repaired_total')) - repairedBefore;
  const exchanges = (await metricTotal(urls, 'dynamokv_anti_entropy_exchanges_total')) - exchangesBefore;
  await Promise.all(live.map((n) => stopProcess(n.process)));
  return { phase, keysRepaired, exchanges };
}

// ---- report ----

function reportProfile(settings: Settings, dir: string): string[] {
  if (settings.profileNode === undefined) return [];
  const newest = readdirSync(dir).filter((f) => f.startsWith(`${settings.profileNode}-`) && f.endsWith('.cpuprofile')).sort().at(-1);
  if (newest === undefined) return [`no CPU profile of ${settings.profileNode} found in ${dir}`];
  const file = path.join(dir, newest);
  return [`CPU profile of ${settings.profileNode} (${path.relative(repoRoot, file)}):`, formatProfileSummary(summarizeProfileFile(file, 12))];
}

function handoffLines(h: HandoffOutcome): string[] {
  const mbps = h.bytesStreamed / MIB / Math.max(0.001, h.handoffSec);
  const mib = Math.max(0.001, h.bytesStreamed / MIB);
  const lines = [
    `preload: ${formatNumber(h.preloadKeysPerSec, 0)} keys/s`,
    `handoff: ${h.keysStreamed} keys, ${formatNumber(h.bytesStreamed / MIB, 1)} MiB streamed by the senders in ${formatNumber(h.handoffSec, 1)} s from the join to the commit = ${formatNumber(mbps, 1)} MiB/s (${mbps >= RATE_GOAL_MB_PER_S ? 'meets' : 'below'} the ${RATE_GOAL_MB_PER_S} MB/s goal); receiver's own count ${formatNumber(h.receiverBytes / MIB, 1)} MiB before its last poll, peak ${formatNumber(h.peakReceiverMBps, 1)} MiB/s over 1 s`,
    `timeline (polled every ${POLL_INTERVAL_MS} ms): first byte at the receiver ${formatNumber(h.firstByteSec, 2)} s after the join, last growth ${formatNumber(h.lastGrowthSec, 2)} s, commit ${formatNumber(h.handoffSec, 2)} s`,
    `CPU from the join to the commit: receiver (n4) ${formatNumber(h.receiverCpuSec, 2)} s = ${formatNumber((h.receiverCpuSec * 1000) / mib, 1)} ms per MiB (${formatNumber((h.receiverCpuSec / Math.max(0.001, h.handoffSec)) * 100, 0)} % of a core); senders (n1..n3${h.phases.length > 0 ? ', foreground included' : ''}) ${formatNumber(h.senderCpuSec, 2)} s = ${formatNumber((h.senderCpuSec * 1000) / mib, 1)} ms per MiB; processes outside the benchmark ${formatNumber(h.otherCpuPercent, 0)} % of a core`,
  ];
  if (h.phases.length === 0) return [...lines, 'no foreground load (--join-load off): no p99 comparison'];
  const [before, during] = h.phases as [Phase, Phase];
  const ratio = during.result.all.p99Ms / Math.max(0.001, before.result.all.p99Ms);
  return [
    ...lines,
    `foreground p99 during/before = ${formatNumber(ratio, 2)}x (${ratio <= P99_RATIO_GOAL ? 'meets' : 'above'} the ${P99_RATIO_GOAL}x goal); throughput during/before = ${formatNumber(during.result.throughputRps / Math.max(1, before.result.throughputRps), 2)}x`,
  ];
}

function aeLines(off: AeOutcome, on: AeOutcome): string[] {
  const ratio = on.phase.result.all.p99Ms / Math.max(0.001, off.phase.result.all.p99Ms);
  return [
    `anti-entropy: ${on.exchanges} exchanges repaired ${on.keysRepaired} keys during the measured phase (off: ${off.exchanges} exchanges)`,
    `foreground p99 with anti-entropy running / off = ${formatNumber(ratio, 2)}x; throughput on/off = ${formatNumber(on.phase.result.throughputRps / Math.max(1, off.phase.result.throughputRps), 2)}x`,
  ];
}

function markdown(settings: Settings, rows: Row[], lines: string[], profile: string[]): string {
  const facts = machineFacts(repoRoot);
  return [
    `# Data-movement benchmark, ${facts.date.slice(0, 10)}`,
    '',
    `Handoff: 3 nodes (N=3 R=2 W=2, Q=${settings.partitions}, RocksDB in temp dirs) loaded with ${settings.keys} keys of ${settings.valueBytes} bytes; a 4th node joins.`,
    settings.joinLoad
      ? `Foreground: ${settings.connections} closed-loop connections, 50/50 GET/PUT, keys uniform, over n1..n3, ${settings.phaseSec} s measured after 2 s warm-up; "during" runs from the join to the commit.`
      : 'Foreground: none (--join-load off): the join streams alone, to measure its rate and CPU cost per MiB.',
    `Anti-entropy: two 3-node clusters of ${settings.aeKeys} keys, one with exchanges off and one every 200 ms; in each, n3 was stopped while ${settings.aeDivergentKeys} keys were overwritten, then restarted just before the measured phase.`,
    `Node flags: --log-level warn${settings.nodeArgs.length > 0 ? ` ${settings.nodeArgs.join(' ')}` : ''}${settings.nodeArgs.some((a) => a.includes('handoff-bytes-per-second-max')) ? '' : ' (handoff throttle at its default, 40 MiB/s per sender)'}.`,
    '',
    markdownTable(HEADER, rows),
    '',
    ...lines.map((l) => `- ${l}`),
    ...(profile.length > 0 ? ['', '```', ...profile, '```'] : []),
    '',
    '## Machine',
    machineMarkdown(facts),
    '',
    'All servers and the load generator share this machine; server CPU % is the sum over the nodes n1..n3 (100 % = one core); other CPU % is what processes outside the benchmark used meanwhile (other work on a shared machine, the main source of run-to-run spread).',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const settings = readSettings();
  startWatchdog(PROGRAM, WATCHDOG_SEC);
  const abort = new AbortController();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'dynamokv-handoff-bench-'));
  const profileDir = path.join(repoRoot, 'bench', 'results', 'tmp', 'profiles');
  const removeData = (): void => rmSync(dataDir, { recursive: true, force: true });
  installExitHandlers(async () => abort.abort());
  process.on('exit', removeData);
  const started: RunningServer[] = [];
  const rows: Row[] = [];
  const lines: string[] = [];
  try {
    if (settings.sections.has('handoff')) {
      const h = await handoffSection(settings, dataDir, started, abort.signal, profileDir);
      rows.push(...h.phases.map(phaseRow));
      lines.push(...handoffLines(h));
      await Promise.all(started.splice(0).map((s) => stopProcess(s.process, s.process.name === settings.profileNode ? PROFILED_STOP_TIMEOUT_MS : undefined)));
    }
    if (settings.sections.has('anti-entropy')) {
      const off = await antiEntropyRun(settings, path.join(dataDir, 'ae-off'), 0, started, abort.signal);
      const on = await antiEntropyRun(settings, path.join(dataDir, 'ae-on'), 200, started, abort.signal);
      rows.push(phaseRow(off.phase), phaseRow(on.phase));
      lines.push(...aeLines(off, on));
    }
    const profile = reportProfile(settings, profileDir);
    process.stdout.write(`\n${textTable(HEADER, rows)}\n\n${lines.join('\n')}\n${profile.length > 0 ? `\n${profile.join('\n')}\n` : ''}`);
    const written = writeReport(repoRoot, settings.outFile, markdown(settings, rows, lines, profile));
    process.stdout.write(`\nreport written to ${written} (nodes on ${HOST})\n`);
  } finally {
    await Promise.all(started.map((s) => stopProcess(s.process)));
    removeData();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${PROGRAM}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
