/**
 * Helpers of the hardening tests: node processes started with any environment (tokens, secrets)
 * and optionally HTTPS, test certificates made with openssl at test time, HTTP calls that trust
 * a test CA, and memory sampling from /proc.
 *
 * Every process started here is tracked; call `stopAllTestNodes()` in afterAll so a failing test
 * never leaves one running.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { NODE_BINARY, NODE_MAIN, freePort } from '../support/nodeProcess';

const READY_POLLS_MAX = 400;
const READY_POLL_INTERVAL_MS = 50;
const OUTPUT_CHARS_MAX = 2_000_000;
const HTTP_TIMEOUT_MS = 10_000;

export interface TestCerts {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: Buffer;
}

/**
 * A throw-away CA and a node certificate it signed, valid for 127.0.0.1 and localhost (P-256
 * keys: quick to make). Nothing here is ever used outside the test's temporary directory.
 */
export function makeTestCerts(dir: string): TestCerts {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=dynamokv test CA');
  openssl('req', ...ec, '-keyout', 'node.key', '-out', 'node.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'node.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl('x509', '-req', '-in', 'node.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'node.pem', '-days', '2', '-extfile', 'node.ext');
  const caFile = join(dir, 'ca.pem');
  return { caFile, certFile: join(dir, 'node.pem'), keyFile: join(dir, 'node.key'), ca: readFileSync(caFile) };
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** A dispatcher that trusts `ca` (for https), or undici's default. */
export function dispatcherFor(ca?: Buffer): Dispatcher | undefined {
  return ca === undefined ? undefined : new Agent({ connect: { ca } });
}

/** One HTTP(S) call, bounded in time; connection failures reject. */
export async function call(url: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string | Buffer; dispatcher?: Dispatcher } = {}): Promise<Answer> {
  const response = await request(`${url}${path}`, {
    method: method as Dispatcher.HttpMethod,
    headers: options.headers,
    body: options.body,
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
  });
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
}

export function errorCodeOf(answer: Answer): string | undefined {
  try {
    return (JSON.parse(answer.body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

export interface TestNodeOptions {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly port?: number;
  readonly peerPort?: number;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** The client port serves HTTPS signed by this CA (the node must get --tls-* args). */
  readonly tlsCa?: Buffer;
}

const running = new Set<ChildProcess>();

export class TestNode {
  private output = '';
  readonly dispatcher: Dispatcher | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly port: number,
    readonly peerPort: number,
    tlsCa: Buffer | undefined,
  ) {
    this.dispatcher = dispatcherFor(tlsCa);
    const append = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_CHARS_MAX);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    child.once('exit', () => running.delete(child));
  }

  static async start(options: TestNodeOptions): Promise<TestNode> {
    const port = options.port ?? (await freePort());
    const peerPort = options.peerPort ?? (await freePort());
    const args = [NODE_MAIN, '--node-id', options.nodeId, '--host', '127.0.0.1', '--port', String(port), '--peer-port', String(peerPort), '--data-dir', options.dataDir, ...(options.args ?? [])];
    const child = spawn(NODE_BINARY, args, { env: { ...process.env, DYNAMOKV_LOG_LEVEL: 'warn', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const scheme = options.tlsCa === undefined ? 'http' : 'https';
    const node = new TestNode(child, `${scheme}://127.0.0.1:${port}`, port, peerPort, options.tlsCa);
    await node.waitReady();
    return node;
  }

  get peerUrl(): string {
    return `http://127.0.0.1:${this.peerPort}`;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  logs(): string {
    return this.output;
  }

  call(method: string, path: string, options: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer> {
    return call(this.url, method, path, { ...options, ...(this.dispatcher === undefined ? {} : { dispatcher: this.dispatcher }) });
  }

  /** Sends `signal` and waits for the exit (SIGKILL after 15 s). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    await (this.dispatcher as Agent | undefined)?.close();
  }

  private async waitReady(): Promise<void> {
    for (let poll = 0; poll < READY_POLLS_MAX; poll++) {
      if (!this.alive) throw new Error(`node exited during start-up:\n${this.output}`);
      try {
        if ((await this.call('GET', '/readyz')).status === 200) return;
      } catch {
        // Not listening yet.
      }
      await sleep(READY_POLL_INTERVAL_MS);
    }
    this.child.kill('SIGKILL');
    throw new Error(`node not ready after ${READY_POLLS_MAX} polls:\n${this.output}`);
  }
}

/** SIGKILLs every TestNode still running and waits for the exits. */
export async function stopAllTestNodes(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  running.clear();
}

/** Resident memory of a process in bytes, from /proc/<pid>/status (VmRSS). */
export function residentBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  const kib = Number(line?.replace(/[^0-9]/g, ''));
  if (!Number.isFinite(kib) || kib <= 0) throw new Error(`no VmRSS for pid ${pid}`);
  return kib * 1024;
}

/** The value of an unlabelled metric (or the sum of its labelled series) in Prometheus text. */
export function metricValue(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** The pid of the node process started with `--port <port>` (found in /proc/<pid>/cmdline). */
export function nodePidByPort(port: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const at = args.indexOf('--port');
    if (args.includes(NODE_MAIN) && at >= 0 && args[at + 1] === String(port)) return Number(entry);
  }
  throw new Error(`no node process with --port ${port}`);
}
