/**
 * `dynamokv dev`: runs a local cluster as child processes of this one.
 *
 * Life cycle: spawn every node -> wait for each /readyz -> when the node build supports clusters
 * (GET /v1/ring answers), join nodes 2..n to node 1 -> wait until every node sees the same ring
 * and every member up -> print the banner -> run until ctrl-c or
 * SIGTERM, or until a node dies on its own. Stopping sends SIGTERM to every node, waits up to
 * stopTimeoutMs, then SIGKILLs what is left, so no node outlives the launcher when it exits
 * normally. A second ctrl-c kills at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoClient, isDynamoError } from '../../client/src/index';
import { retryWhileChangePending } from './membershipChange';
import { banner, cliInvocation, devNodes, nodeArgs, seedAddress, type DevNode, type DevOptions } from './devPlan';
import { EXIT_ERROR, EXIT_OK } from './usage';

export interface DevIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

const TAIL_LINES_MAX = 30;
const READY_POLL_MS = 200;
const HELP_PROBE_TIMEOUT_MS = 10_000;
const HELP_PROBE_BYTES_MAX = 64 * 1024;

interface Running {
  readonly node: DevNode;
  readonly child: ChildProcess;
  /** Resolves once the process has exited and its output streams are closed. */
  exited: Promise<void>;
  readonly tail: string[];
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  log: WriteStream | undefined;
}

export async function runDev(options: DevOptions, io: DevIo): Promise<number> {
  const nodes = devNodes(options);
  const clusterFlags = options.nodes > 1 || (await nodeKnowsClusterFlags(options.nodeBin));
  const running: Running[] = [];
  let stopping = false;
  let settle: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (settle = resolve));

  const stopAll = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const r of running) if (r.exit === undefined) r.child.kill('SIGTERM');
    const allExited = Promise.all(running.map((r) => r.exited));
    if (!(await within(allExited, options.stopTimeoutMs))) {
      for (const r of running) if (r.exit === undefined) {
        io.stderr.write(`dev: ${r.node.id} did not stop within ${options.stopTimeoutMs} ms; killing it\n`);
        r.child.kill('SIGKILL');
      }
      await allExited;
    }
    for (const r of running) r.log?.end();
    io.stdout.write(`dev: ${code === EXIT_OK ? 'all nodes stopped' : 'stopped every node'}\n`);
    settle(code);
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // A second ctrl-c means "now": no more waiting for graceful shutdown.
      for (const r of running) if (r.exit === undefined) r.child.kill('SIGKILL');
      return;
    }
    io.stdout.write(`\ndev: ${signal} received, stopping ${running.length} node(s)...\n`);
    void stopAll(EXIT_OK);
  };
  // SIGHUP too: closing the terminal must not leave detached nodes running.
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);

  try {
    for (const node of nodes) {
      const r = startNode(options, node, clusterFlags, io);
      running.push(r);
      void r.exited.then(() => {
        if (stopping) return;
        reportDeath(r, options, io);
        void stopAll(EXIT_ERROR);
      });
    }
    const client = new DynamoClient({ endpoints: nodes.map((n) => n.url), routing: 'any', timeoutMs: 2000, retries: 0 });
    try {
      const ready = await Promise.all(running.map((r) => waitReady(client, r, options.readyTimeoutMs, () => stopping)));
      const notReady = running.filter((_, i) => !ready[i]);
      if (stopping) return await finished;
      if (notReady.length > 0) {
        io.stderr.write(`dev: ${notReady.map((r) => r.node.id).join(', ')} not ready after ${options.readyTimeoutMs} ms; stopping\n`);
        await stopAll(EXIT_ERROR);
        return await finished;
      }
      const clustered = await joinCluster(client, options, nodes, io);
      if (clustered === 'failed') {
        await stopAll(EXIT_ERROR);
        return await finished;
      }
      // A node judges a member it has not heard from yet as down, so right after the joins a
      // write could miss its quorum. The banner invites the user to write at once: wait first.
      if (clustered === 'joined' && !(await waitConverged(client, nodes, options.readyTimeoutMs, () => stopping))) {
        if (!stopping) io.stderr.write(`dev: the nodes do not all see each other up after ${options.readyTimeoutMs} ms; requests may fail until they do (see \`dynamokv ring\`)\n`);
      }
      if (!stopping) io.stdout.write(banner(options, nodes, running.map((r) => r.child.pid), clustered === 'joined', cliInvocation(process.argv[1], process.cwd())));
    } finally {
      await client.close();
    }
    return await finished;
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
  }
}

function startNode(options: DevOptions, node: DevNode, clusterFlags: boolean, io: DevIo): Running {
  mkdirSync(node.dataDir, { recursive: true });
  let log: WriteStream | undefined;
  if (options.quiet) {
    const logDir = path.join(options.dataDir, 'logs');
    mkdirSync(logDir, { recursive: true });
    log = createWriteStream(path.join(logDir, `${node.id}.log`), { flags: 'a' });
  }
  const args = nodeArgs(options, node, clusterFlags);
  // Detached: each node gets its own process group, so a ctrl-c in the terminal reaches only
  // this launcher, which then stops the nodes once, with SIGTERM. (Had the node also received
  // the terminal's SIGINT, our SIGTERM would be its second signal, which means "exit now".)
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env, detached: true });
  const running: Running = { node, child, exited: Promise.resolve(), tail: [], exit: undefined, log };
  const onLine = (line: string): void => {
    running.tail.push(line);
    if (running.tail.length > TAIL_LINES_MAX) running.tail.shift();
    if (running.log !== undefined) running.log.write(`${line}\n`);
    else io.stdout.write(`[${node.id}] ${line}\n`);
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  running.exited = new Promise<void>((resolve) => {
    child.on('error', (error) => {
      onLine(`failed to start: ${error.message}`);
      if (running.exit === undefined) running.exit = { code: null, signal: null };
      resolve();
    });
    // 'close' rather than 'exit': it comes after the output streams end, so no log line
    // arrives after the log file is closed.
    child.on('close', (code, signal) => {
      running.exit = { code, signal };
      resolve();
    });
  });
  return running;
}

function reportDeath(r: Running, options: DevOptions, io: DevIo): void {
  const how = r.exit?.signal != null ? `was killed by ${r.exit.signal}` : `exited with code ${r.exit?.code ?? '?'}`;
  io.stderr.write(`dev: node ${r.node.id} ${how} unexpectedly; stopping the other nodes.\n`);
  if (options.quiet && r.tail.length > 0) io.stderr.write(`dev: last output of ${r.node.id}:\n${r.tail.map((l) => `  ${l}`).join('\n')}\n`);
  const argv = nodeArgs(options, r.node, true).slice(1).join(' ');
  const relative = path.relative(process.cwd(), options.nodeBin);
  io.stderr.write(`dev: it was started as: node ${relative.startsWith('..') ? options.nodeBin : relative} ${argv}\n`);
  if (r.tail.some((l) => /unknown (flag|option)|unexpected argument|ERR_PARSE_ARGS/i.test(l))) {
    io.stderr.write('dev: the node rejected a command-line flag (see its output above); this node build may not support that option yet.\n');
  }
}

async function waitReady(client: DynamoClient, r: Running, timeoutMs: number, stopping: () => boolean): Promise<boolean> {
  const deadlineMs = Date.now() + timeoutMs;
  while (Date.now() < deadlineMs) {
    if (r.exit !== undefined || stopping()) return false;
    if (await client.ready(r.node.url)) return true;
    await sleep(READY_POLL_MS);
  }
  return false;
}

/** How long one join of the launcher keeps retrying while the previous join still streams. */
const DEV_JOIN_TIMEOUT_MS = 120_000;

/**
 * Joins nodes 2..n to node 1. A node build without cluster support answers GET /v1/ring with
 * 404; then the nodes stay standalone. Members node 1 already lists (a restart on the same data
 * folder) are not joined again.
 */
async function joinCluster(client: DynamoClient, options: DevOptions, nodes: readonly DevNode[], io: DevIo): Promise<'joined' | 'standalone' | 'failed'> {
  if (nodes.length < 2) return 'standalone';
  let memberIds: Set<string>;
  try {
    const ring = await client.ring({ endpoint: nodes[0]!.url });
    memberIds = new Set(ring.members.filter((m) => m.state === 'normal' || m.state === 'joining').map((m) => m.id));
  } catch (error) {
    if (isDynamoError(error) && error.status === 404) return 'standalone';
    io.stderr.write(`dev: cannot read the ring of ${nodes[0]!.id}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 'failed';
  }
  for (const node of nodes.slice(1)) {
    if (memberIds.has(node.id)) continue;
    try {
      // One change at a time: each join waits for the previous one to finish streaming.
      await retryWhileChangePending(() => client.join(node.url, seedAddress(options)), { timeoutMs: DEV_JOIN_TIMEOUT_MS, onWaiting: () => undefined });
      io.stdout.write(`dev: ${node.id} joined the ring of n1\n`);
    } catch (error) {
      io.stderr.write(`dev: ${node.id} could not join: ${error instanceof Error ? error.message : String(error)}\n`);
      return 'failed';
    }
  }
  return 'joined';
}

/**
 * Waits until every node holds the same ring version, judges every member up and shows no
 * membership change pending; false when `timeoutMs` passed first (or the launcher is stopping).
 */
async function waitConverged(client: DynamoClient, nodes: readonly DevNode[], timeoutMs: number, stopping: () => boolean): Promise<boolean> {
  const deadlineMs = Date.now() + timeoutMs;
  while (Date.now() < deadlineMs && !stopping()) {
    try {
      const rings = await Promise.all(nodes.map((n) => client.ring({ endpoint: n.url })));
      const sameVersion = rings.every((r) => r.version === rings[0]!.version);
      const allUp = rings.every((r) => r.members.filter((m) => m.state !== 'left').every((m) => m.up === true));
      // A join returns when its change began; the cluster is ready when the last one committed.
      const settled = rings.every((r) => r.raw.pending === undefined || r.raw.pending === null);
      if (sameVersion && allUp && settled) return true;
    } catch {
      // A node busy starting or gossiping; ask again.
    }
    await sleep(READY_POLL_MS);
  }
  return false;
}

/** Asks the node binary for its --help and looks for --peer-port; bounded in time and bytes. */
async function nodeKnowsClusterFlags(nodeBin: string): Promise<boolean> {
  const child = spawn(process.execPath, [nodeBin, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    if (output.length < HELP_PROBE_BYTES_MAX) output += chunk.toString('utf8');
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    child.on('exit', () => resolve());
    child.on('error', () => resolve());
  });
  if (!(await within(exited, HELP_PROBE_TIMEOUT_MS))) {
    child.kill('SIGKILL');
    await exited;
  }
  return output.includes('--peer-port');
}

/** True when `promise` settles within `limitMs`. The timer is cleared, so it never keeps the process alive. */
async function within(promise: Promise<unknown>, limitMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), limitMs);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
