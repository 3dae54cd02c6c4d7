/**
 * Test helper: runs a real dynamokv node (the compiled dist/node/src/main.js) as a child process
 * on a free loopback port with a temporary data directory. Used by the client and CLI tests.
 * The build must exist (`npm test` builds first; by hand: `npx tsc -p tsconfig.json`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const NODE_MAIN = path.join(REPO_ROOT, 'dist', 'node', 'src', 'main.js');
export const CLI_MAIN = path.join(REPO_ROOT, 'dist', 'cli', 'src', 'main.js');

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const OUTPUT_CHARS_MAX = 20_000;

import { freePort, freePortBlock } from '../../../test/support/ports';

export { freePort, freePortBlock };

/** Fails with a clear message when the compiled file a process test needs is missing. */
export function requireBuilt(file: string): void {
  if (!existsSync(file)) throw new Error(`${path.relative(REPO_ROOT, file)} is missing: build first with \`npx tsc -p tsconfig.json\``);
}

export interface NodeProcess {
  readonly url: string;
  readonly port: number;
  /** The peer port: what another node's join names as its seed (127.0.0.1:<peerPort>). */
  readonly peerPort: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Everything the node printed so far (bounded). */
  output(): string;
  /** SIGTERM, bounded wait, then SIGKILL; removes the data directory unless `keepData`. */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

export async function startNode(options: { nodeId?: string; extraArgs?: readonly string[]; dataDir?: string } = {}): Promise<NodeProcess> {
  requireBuilt(NODE_MAIN);
  const port = await freePort();
  const peerPort = await freePort();
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'dynamokv-client-test-'));
  const args = [NODE_MAIN, '--node-id', options.nodeId ?? 'n1', '--host', '127.0.0.1', '--port', String(port), '--peer-port', String(peerPort), '--data-dir', dataDir, '--log-level', 'warn', ...(options.extraArgs ?? [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_CHARS_MAX);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const node: NodeProcess = {
    url,
    port,
    peerPort,
    dataDir,
    child,
    output: () => output,
    async stop(stopOptions = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS)))]);
        clearTimeout(timer);
        if (!stopped) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      if (stopOptions.keepData !== true) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await waitReady(url, child);
  } catch (error) {
    await node.stop();
    throw new Error(`${(error as Error).message}\nnode output:\n${output}`, { cause: error });
  }
  return node;
}

/** Polls /readyz until 200, the process exits, or the deadline passes. */
export async function waitReady(url: string, child?: ChildProcess, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (Date.now() < deadlineMs) {
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`node exited early (code ${child.exitCode}, signal ${child.signalCode})`);
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

/** True while a process with this pid exists. */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
