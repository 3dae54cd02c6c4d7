/**
 * The `dynamokv dev` process supervisor, run as the compiled CLI with a scripted stand-in node
 * (--node-bin): a tiny HTTP server that answers /readyz and can be told, through the environment
 * the launcher passes on, to reject its flags or to die. This isolates the launcher's duties:
 * start, report, forward logs, stop every child on a signal or on a child's death.
 * The real node is exercised by cli.test.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI_MAIN, freePortBlock, processExists, requireBuilt } from '../../client/src/testing/nodeProcess';

const FAKE_NODE = `
const http = require('node:http');
const args = process.argv.slice(2);
const arg = (name) => args[args.indexOf(name) + 1];
if (args.includes('--help')) { console.log('--port --peer-port --seeds'); process.exit(0); }
if (process.env.FAKE_REJECT === '1') { console.error("TypeError [ERR_PARSE_ARGS_UNKNOWN_OPTION]: Unknown option '--seeds'"); process.exit(2); }
const id = arg('--node-id');
const server = http.createServer((req, res) => { res.statusCode = req.url === '/readyz' ? 200 : 404; res.end(); });
server.listen(Number(arg('--port')), '127.0.0.1', () => {
  console.log('fake node ' + id + ' listening');
  if (process.env.FAKE_DIE === id) setTimeout(() => process.exit(7), 300);
});
process.on('SIGTERM', () => { console.log('fake node ' + id + ' stopping'); server.close(() => process.exit(0)); });
`;

let workDir: string;
let fakeBin: string;

beforeAll(() => {
  requireBuilt(CLI_MAIN);
  workDir = mkdtempSync(path.join(tmpdir(), 'dynamokv-dev-unit-'));
  fakeBin = path.join(workDir, 'fake-node.js');
  writeFileSync(fakeBin, FAKE_NODE);
});

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

interface DevRun {
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly closed: Promise<number | null>;
  readonly kill: (signal: NodeJS.Signals) => void;
}

async function startDev(nodes: number, env: Record<string, string>, extra: string[] = []): Promise<DevRun> {
  const portBase = await freePortBlock(nodes);
  const peerBase = await freePortBlock(nodes);
  const dataDir = path.join(workDir, `data-${portBase}`);
  const args = [CLI_MAIN, 'dev', '--nodes', String(nodes), '--data-dir', dataDir, '--port-base', String(portBase), '--peer-port-base', String(peerBase), '--node-bin', fakeBin, ...extra];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  // Bounded: a stuck launcher fails the test instead of hanging it.
  const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
  void closed.then(() => clearTimeout(guard));
  return { stdout: () => stdout, stderr: () => stderr, closed, kill: (s) => child.kill(s) };
}

async function until(predicate: () => boolean, limitMs = 20_000): Promise<void> {
  for (let waitedMs = 0; waitedMs < limitMs && !predicate(); waitedMs += 50) await sleep(50);
}

function pids(stdout: string): number[] {
  return [...stdout.matchAll(/ pid (\d+) /g)].map((m) => Number(m[1]));
}

test('two nodes start, logs are prefixed with the node id, SIGTERM stops both and exits 0', async () => {
  const dev = await startDev(2, {});
  await until(() => dev.stdout().includes('Press ctrl-c'));
  const out = dev.stdout();
  expect(out).toContain('[n1] fake node n1 listening');
  expect(out).toContain('[n2] fake node n2 listening');
  // The stand-in has no /v1/ring, so the launcher must say the nodes run standalone.
  expect(out).toContain('no cluster support yet');
  const children = pids(out);
  expect(children).toHaveLength(2);
  dev.kill('SIGTERM');
  expect(await dev.closed).toBe(0);
  expect(children.filter(processExists)).toEqual([]);
  expect(dev.stdout()).toContain('[n2] fake node n2 stopping');
});

test('with --quiet the node logs go to files under the data folder, not to stdout', async () => {
  const dev = await startDev(1, {}, ['--quiet']);
  await until(() => dev.stdout().includes('Press ctrl-c'));
  const logDir = /node logs go to (\S+)\.$/m.exec(dev.stdout())?.[1];
  dev.kill('SIGINT');
  expect(await dev.closed).toBe(0);
  expect(dev.stdout()).not.toContain('[n1]');
  expect(readFileSync(path.join(logDir!, 'n1.log'), 'utf8')).toContain('fake node n1 listening');
});

test('a node that rejects its flags makes the launcher exit 1 and say so', async () => {
  const dev = await startDev(2, { FAKE_REJECT: '1' });
  expect(await dev.closed).toBe(1);
  expect(dev.stdout()).toContain("Unknown option '--seeds'");
  expect(dev.stderr()).toMatch(/exited with code 2 unexpectedly/);
  expect(dev.stderr()).toContain('rejected a command-line flag');
});

test('a node dying after start stops the other nodes and the launcher exits 1', async () => {
  const dev = await startDev(2, { FAKE_DIE: 'n2' });
  await until(() => dev.stdout().includes('pid'));
  const children = pids(dev.stdout());
  expect(await dev.closed).toBe(1);
  expect(dev.stderr()).toMatch(/node n2 exited with code 7 unexpectedly/);
  expect(children.filter(processExists)).toEqual([]);
});
