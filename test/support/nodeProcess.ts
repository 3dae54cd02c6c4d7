/**
 * Starts real dynamokv node processes (the compiled dist/ build) for process and cluster tests.
 * Every process started here is tracked; call `killAllNodes()` in afterAll so a failing test
 * never leaves one running.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

// Two levels up from test/support, or three when this runs compiled from dist/test/support (the
// chaos soak command does), so node and CLI paths point at the one build either way.
const ROOT_OR_DIST = resolve(__dirname, '..', '..');
export const REPO_ROOT = basename(ROOT_OR_DIST) === 'dist' ? dirname(ROOT_OR_DIST) : ROOT_OR_DIST;
export const NODE_MAIN = join(REPO_ROOT, 'dist', 'node', 'src', 'main.js');
/** The Node 24 binary the project pins (the system one may be older). */
export const NODE_BINARY = process.execPath;

const READY_POLLS_MAX = 400;
const READY_POLL_INTERVAL_MS = 50;
const OUTPUT_CHARS_MAX = 200_000;

const running = new Set<ChildProcess>();

import { freePort } from './ports';

export { freePort };

/** The compiled `dynamokv` CLI (its `dev` command runs a local cluster of NODE_MAIN processes). */
export const CLI_MAIN = join(REPO_ROOT, 'dist', 'cli', 'src', 'main.js');

/**
 * Compiles the project when dist/ is missing or older than any source file under node/src,
 * client/src or cli/src (the CLI and the client compile into the same dist/).
 */
export function ensureBuilt(): void {
  const built = Math.min(...[NODE_MAIN, CLI_MAIN].map((main) => (existsSync(main) ? statSync(main).mtimeMs : 0)));
  const newest = Math.max(...['node', 'client', 'cli'].map((dir) => newestSourceMs(join(REPO_ROOT, dir, 'src'))));
  if (built > newest) return;
  try {
    execFileSync(NODE_BINARY, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO_ROOT, 'tsconfig.json')], { stdio: 'pipe' });
  } catch (error) {
    // tsc still emits JavaScript when some other file has a type error; only a missing build is fatal.
    if (!existsSync(NODE_MAIN)) throw error;
  }
}

function newestSourceMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMs(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

export interface NodeOptions {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly port?: number;
  /** Peer port for traffic between nodes; a free one when absent. */
  readonly peerPort?: number;
  readonly host?: string;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** What start() waits for: /readyz 200 (default), or only /healthz (a node held back by --require-admission). */
  readonly waitFor?: 'ready' | 'healthy';
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class NodeProcess {
  private output = '';
  readonly exited: Promise<Exit>;

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    /** The peer port the node was given, so tests can name it as a seed or call the peer API. */
    readonly peerPort: number,
  ) {
    const append = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_CHARS_MAX);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        running.delete(child);
        resolveExit({ code, signal });
      });
    });
  }

  /** Spawns the node and resolves once /readyz answers 200; rejects with its output if it exits. */
  static async start(options: NodeOptions): Promise<NodeProcess> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? (await freePort(host));
    const peerPort = options.peerPort ?? (await freePort(host));
    const child = spawn(NODE_BINARY, [NODE_MAIN, '--node-id', options.nodeId, '--host', host, '--port', String(port), '--peer-port', String(peerPort), '--data-dir', options.dataDir, ...(options.args ?? [])], {
      env: { ...process.env, DYNAMOKV_LOG_LEVEL: 'warn', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    const node = new NodeProcess(child, `http://${host}:${port}`, peerPort);
    await node.waitReady(options.waitFor === 'healthy' ? '/healthz' : '/readyz');
    return node;
  }

  /** True until the process has exited. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  logs(): string {
    return this.output;
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<Exit> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private async waitReady(probePath = '/readyz'): Promise<void> {
    let exit: Exit | undefined;
    void this.exited.then((e) => {
      exit = e;
    });
    for (let poll = 0; poll < READY_POLLS_MAX; poll++) {
      if (exit !== undefined) throw new Error(`node exited during start-up (${JSON.stringify(exit)}):\n${this.output}`);
      try {
        const response = await fetch(`${this.url}${probePath}`);
        await response.arrayBuffer();
        if (response.status === 200) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((r) => setTimeout(r, READY_POLL_INTERVAL_MS));
    }
    this.child.kill('SIGKILL');
    throw new Error(`node not ready after ${READY_POLLS_MAX} polls:\n${this.output}`);
  }
}

/** Runs the node binary with `args` until it exits (for start-up failures); SIGKILL after timeoutMs. */
export async function runNode(args: readonly string[], env: Readonly<Record<string, string>> = {}, timeoutMs = 15_000): Promise<Exit & { stdout: string; stderr: string }> {
  const child = spawn(NODE_BINARY, [NODE_MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = await new Promise<Exit>((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
  clearTimeout(timer);
  running.delete(child);
  return { ...exit, stdout, stderr };
}

/** SIGKILLs every node still running and waits until each has exited. */
export async function killAllNodes(): Promise<void> {
  const waits = [...running].map(
    (child) =>
      new Promise<void>((resolveExit) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolveExit();
        child.once('exit', () => resolveExit());
        child.kill('SIGKILL');
      }),
  );
  await Promise.all(waits);
  running.clear();
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
