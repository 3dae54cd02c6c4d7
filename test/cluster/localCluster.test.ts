/**
 * The local cluster as a new user meets it: the compiled `dynamokv dev --nodes 3` runs as a child
 * process in the repository root and prints its banner once the nodes are joined; the commands
 * the banner suggests work when typed as shown; the CLI's put, get and ring work against any node
 * with the documented exit codes; ctrl-c (SIGINT) stops every node and exits 0, leaving no node
 * process behind.
 */
import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { freePortBlock, waitFor } from '../support/cluster';
import { CLI_MAIN, NODE_BINARY, REPO_ROOT, ensureBuilt, processExists } from '../support/nodeProcess';

const OUTPUT_CHARS_MAX = 200_000;
const CLI_TIMEOUT_MS = 20_000;

let dir: string;
let launcher: ChildProcess | undefined;
let nodePids: number[] = [];

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'dynamokv-dev-'));
});

afterAll(() => {
  // Whatever happened above, nothing this test started may outlive it.
  if (launcher !== undefined && launcher.exitCode === null && launcher.signalCode === null) launcher.kill('SIGKILL');
  for (const pid of nodePids) if (processExists(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the compiled CLI once to completion (SIGKILL after CLI_TIMEOUT_MS). */
async function cli(args: readonly string[]): Promise<CliRun> {
  return run(spawn(NODE_BINARY, [CLI_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DYNAMOKV_ENDPOINTS: '' } }));
}

/** Runs a command line as a user types it, in the repository root, with the pinned Node first on PATH. */
async function shell(line: string): Promise<CliRun> {
  const path = `${dirname(NODE_BINARY)}:${process.env.PATH ?? ''}`;
  return run(spawn('/bin/sh', ['-c', line], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: path, DYNAMOKV_ENDPOINTS: '' } }));
}

async function sequential<T>(tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  for (const task of tasks) results.push(await task());
  return results;
}

async function run(child: ChildProcessByStdio<null, Readable, Readable>): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Processes whose command line names this test's data folder (the nodes do, via --data-dir). */
function processesUsing(folder: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(folder)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

test('dynamokv dev --nodes 3: put, get and ring from the CLI work, and ctrl-c stops every node', async () => {
  const portBase = await freePortBlock(3);
  let peerPortBase = await freePortBlock(3);
  while (Math.abs(peerPortBase - portBase) < 3) peerPortBase = await freePortBlock(3);
  const endpoint = (i: number) => `http://127.0.0.1:${portBase + i}`;

  const child = spawn(NODE_BINARY, [CLI_MAIN, 'dev', '--nodes', '3', '--data-dir', dir, '--port-base', String(portBase), '--peer-port-base', String(peerPortBase)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  launcher = child;
  let output = '';
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_CHARS_MAX);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void closed.then((code) => (exitCode = code));

  await waitFor('the dev banner', 60_000, async () => {
    if (exitCode !== undefined) throw new Error(`dynamokv dev exited early with ${exitCode}:\n${output}`);
    return output.includes('Press ctrl-c to stop every node.') ? true : undefined;
  }).catch((error: unknown) => {
    throw new Error(`${String(error)}\n--- dev output ---\n${output}`);
  });
  expect(output).toContain('dynamokv local cluster is up: 3 nodes, N=3');
  nodePids = [...output.matchAll(/ pid (\d+) /g)].map((m) => Number(m[1]));
  expect(nodePids).toHaveLength(3);
  expect(nodePids.every(processExists)).toBe(true);

  // First exactly what the banner tells a new user to try, from the folder it was started in.
  const tryLines = output.slice(output.indexOf('Try it (in another terminal):')).split('\n').slice(1);
  const suggested = tryLines.slice(0, tryLines.indexOf('')).map((l) => l.trim()).filter((l) => !l.startsWith('export '));
  expect(suggested).toHaveLength(3);
  const [putAsShown, getAsShown, ringAsShown] = await sequential(suggested.map((line) => () => shell(line)));
  expect(putAsShown).toMatchObject({ code: 0, stderr: '' });
  expect(getAsShown).toEqual({ code: 0, stdout: 'world', stderr: '' });
  expect(ringAsShown!.code).toBe(0);

  const put = await cli(['put', 'demo', 'hello', 'world', '-e', endpoint(0), '--context', /context: (\S+)/.exec(putAsShown!.stdout)![1]!]);
  expect(put).toMatchObject({ code: 0, stderr: '' });
  expect(put.stdout).toMatch(/^stored demo\/hello\ncontext: \S+\n$/);

  // Read through another node than the one that took the write.
  const get = await cli(['get', 'demo', 'hello', '-e', endpoint(1)]);
  expect(get).toEqual({ code: 0, stdout: 'world', stderr: '' });

  const missing = await cli(['get', 'demo', 'nobody', '-e', endpoint(2)]);
  expect(missing).toEqual({ code: 4, stdout: '', stderr: 'not found: demo/nobody\n' });

  const ring = await cli(['ring', '-e', endpoint(0)]);
  expect(ring.code).toBe(0);
  for (const id of ['n1', 'n2', 'n3']) expect(ring.stdout).toMatch(new RegExp(`^${id}\\s+normal\\s+up`, 'm'));
  expect(ring.stdout).toContain('N=3');

  child.kill('SIGINT');
  const code = await Promise.race([closed, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000).unref())]);
  expect(code).toBe(0);
  expect(output).toContain('dev: all nodes stopped');
  expect(nodePids.filter(processExists)).toEqual([]);
  expect(processesUsing(dir)).toEqual([]);
}, 120_000);
