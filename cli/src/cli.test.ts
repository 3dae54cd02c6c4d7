/**
 * The compiled `dynamokv` CLI (dist/cli/src/main.js) run as a child process against a real node,
 * checking output and exit codes; then `dynamokv dev --nodes 1` started, used and stopped with
 * SIGINT, leaving no node process behind.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI_MAIN, freePort, processExists, requireBuilt, startNode, waitReady, type NodeProcess } from '../../client/src/testing/nodeProcess';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const RUN_TIMEOUT_MS = 20_000;

/** Runs the CLI to completion (bounded), optionally feeding stdin. */
async function cli(args: readonly string[], stdin?: string | Buffer): Promise<Run> {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DYNAMOKV_ENDPOINTS: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  child.stdin.end(stdin);
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

let node: NodeProcess;

beforeAll(async () => {
  requireBuilt(CLI_MAIN);
  node = await startNode();
});

afterAll(async () => {
  await node?.stop();
});

test('put, get and delete round-trip with exit codes 0, 0 and then 4 for the deleted key', async () => {
  const e = ['-e', node.url];
  const put = await cli(['put', 'cli', 'k', 'hello world', ...e]);
  expect(put).toMatchObject({ code: 0 });
  expect(put.stdout).toMatch(/^stored cli\/k\ncontext: \S+\n$/);
  const get = await cli(['get', 'cli', 'k', ...e]);
  expect(get).toEqual({ code: 0, stdout: 'hello world', stderr: '' });
  expect(await cli(['delete', 'cli', 'k', ...e])).toMatchObject({ code: 0, stdout: 'deleted cli/k\n' });
  const missing = await cli(['get', 'cli', 'k', ...e]);
  expect(missing.code).toBe(4);
  expect(missing.stderr).toMatch(/not found: cli\/k/);
});

test('put reads the value from stdin with "-", and get --json shows it with its context', async () => {
  expect((await cli(['put', 'cli', 'piped', '-', '-t', 'application/json', '-e', node.url], '{"a":1}')).code).toBe(0);
  const get = await cli(['get', 'cli', 'piped', '--json', '-e', node.url]);
  expect(get.code).toBe(0);
  const parsed = JSON.parse(get.stdout) as { found: boolean; context: string; values: { value: string; encoding: string }[] };
  expect(parsed.found).toBe(true);
  expect(typeof parsed.context).toBe('string');
  expect(parsed.values).toMatchObject([{ value: '{"a":1}', encoding: 'utf8' }]);
});

test('siblings print numbered with the context and exit 3; put --context resolves them', async () => {
  const e = ['-e', node.url];
  await cli(['put', 'cli', 'sib', 'left', ...e]);
  await cli(['put', 'cli', 'sib', 'right', ...e]);
  const get = await cli(['get', 'cli', 'sib', ...e]);
  expect(get.code).toBe(3);
  expect(get.stdout).toMatch(/has 2 siblings/);
  expect(get.stdout).toMatch(/\[1\] text\/plain/);
  expect(get.stdout).toMatch(/\[2\] text\/plain/);
  const context = /^context: (\S+)$/m.exec(get.stdout)?.[1];
  expect(context).toBeDefined();
  expect((await cli(['put', 'cli', 'sib', 'both', '--context', context!, ...e])).code).toBe(0);
  expect(await cli(['get', 'cli', 'sib', ...e])).toMatchObject({ code: 0, stdout: 'both' });
});

test('usage errors exit 2 with a pointer to --help; an unreachable node exits 1 with a hint', async () => {
  const usage = await cli(['get', 'only-bucket']);
  expect(usage.code).toBe(2);
  expect(usage.stderr).toMatch(/get needs <bucket> <key>[\s\S]*dynamokv get --help/);
  expect((await cli(['launch'])).code).toBe(2);
  const down = await cli(['get', 'b', 'k', '-e', `http://127.0.0.1:${await freePort()}`, '--retries', '0']);
  expect(down.code).toBe(1);
  expect(down.stderr).toMatch(/UNAVAILABLE[\s\S]*dynamokv dev/);
});

test('--help prints the usage with exit codes and exits 0', async () => {
  const help = await cli(['--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/Usage: dynamokv/);
  expect(help.stdout).toMatch(/4 +get: key not found/);
});

test('dev --nodes 1 starts a node that answers /readyz, and SIGINT stops it with exit 0 and no orphan', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'dynamokv-dev-test-'));
  const port = await freePort();
  const peerPort = await freePort();
  const child = spawn(process.execPath, [CLI_MAIN, 'dev', '--nodes', '1', '--data-dir', dataDir, '--port-base', String(port), '--peer-port-base', String(peerPort), '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  try {
    for (let i = 0; i < 300 && !stdout.includes('ctrl-c') && child.exitCode === null; i++) await sleep(100);
    expect(`${stdout}${stderr}`).toContain('Press ctrl-c');
    const pid = Number(/ n1 .* pid (\d+)/.exec(stdout)?.[1]);
    expect(processExists(pid)).toBe(true);
    await waitReady(`http://127.0.0.1:${port}`, undefined, 5000);
    child.kill('SIGINT');
    expect(await closed).toBe(0);
    expect(processExists(pid)).toBe(false);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});
