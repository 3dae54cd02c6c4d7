/**
 * Child-process plumbing shared by the benchmarks: free ports, starting servers as separate
 * processes, waiting until they answer, reading their CPU time and stopping them for sure.
 *
 * Every child is registered in one place so that an exit of the benchmark, normal or by ctrl-c,
 * kills what it started; a benchmark must never leave a server behind on a shared machine.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** The last lines a child printed, kept so a failed start can explain itself. */
const OUTPUT_LINES_MAX = 40;
const STOP_TIMEOUT_MS_DEFAULT = 5_000;
const READY_POLL_INTERVAL_MS = 100;

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or signal name) once the process has gone. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
  recentOutput(): string;
}

const running = new Set<ManagedProcess>();
let exitHandlersInstalled = false;

import { freePort } from '../../test/support/ports';

export { freePort };

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Forward the child's output to our stderr, prefixed with its name (default: keep it quiet). */
  echoOutput?: boolean;
}

/** Starts a child process in its own registry entry; see `stopAll` and `installExitHandlers`. */
export function startProcess(options: StartOptions): ManagedProcess {
  installExitHandlers();
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${options.name}: ${options.command}`);

  const lines: string[] = [];
  const record = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.length === 0) continue;
      lines.push(line);
      if (lines.length > OUTPUT_LINES_MAX) lines.shift();
      if (options.echoOutput === true) process.stderr.write(`[${options.name}] ${line}\n`);
    }
  };
  child.stdout?.on('data', record);
  child.stderr?.on('data', record);

  let exitedFlag = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      running.delete(managed);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const managed: ManagedProcess = {
    name: options.name,
    child,
    pid: child.pid,
    exited,
    hasExited: () => exitedFlag,
    recentOutput: () => lines.join('\n'),
  };
  running.add(managed);
  return managed;
}

/** SIGTERM, then SIGKILL if the process has not exited within `timeoutMs`. */
export async function stopProcess(proc: ManagedProcess, timeoutMs = STOP_TIMEOUT_MS_DEFAULT): Promise<number | string> {
  if (proc.hasExited()) return proc.exited;
  proc.child.kill('SIGTERM');
  const timedOut = Symbol('timeout');
  const outcome = await Promise.race([proc.exited, sleep(timeoutMs, timedOut)]);
  if (outcome !== timedOut) return outcome as number | string;
  proc.child.kill('SIGKILL');
  return proc.exited;
}

export async function stopAll(timeoutMs = STOP_TIMEOUT_MS_DEFAULT): Promise<void> {
  await Promise.all([...running].map((proc) => stopProcess(proc, timeoutMs)));
}

/** Kills every registered child on any way out of this process, including ctrl-c. */
export function installExitHandlers(onSignal?: () => Promise<void>): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  // 'exit' handlers cannot wait, so this last line of defence is a synchronous SIGKILL.
  process.on('exit', () => {
    for (const proc of running) proc.child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping child processes\n`);
      const cleanup = onSignal ? onSignal() : Promise.resolve();
      void cleanup
        .catch(() => undefined)
        .then(() => stopAll(2_000))
        .finally(() => process.exit(130));
    });
  }
}

/**
 * Polls `url` until it answers `expectStatus`; fails early when the process dies and after
 * `timeoutMs` otherwise, with the child's last output in the error.
 */
export async function waitForHttp(proc: ManagedProcess, url: string, timeoutMs = 20_000, expectStatus = 200): Promise<void> {
  const attemptsMax = Math.ceil(timeoutMs / READY_POLL_INTERVAL_MS);
  let lastProblem = 'no answer yet';
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    if (proc.hasExited()) {
      throw new Error(`${proc.name} exited (${String(await proc.exited)}) before it was ready:\n${proc.recentOutput()}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.status === expectStatus) return;
      lastProblem = `status ${response.status}`;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await sleep(READY_POLL_INTERVAL_MS);
  }
  throw new Error(`${proc.name} not ready at ${url} after ${timeoutMs} ms (${lastProblem}):\n${proc.recentOutput()}`);
}

let clockTicksPerSecond: number | undefined;

function ticksPerSecond(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number.parseInt(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim(), 10);
    } catch {
      clockTicksPerSecond = 100; // The Linux default (USER_HZ) on every common architecture.
    }
    if (!Number.isFinite(clockTicksPerSecond) || clockTicksPerSecond <= 0) clockTicksPerSecond = 100;
  }
  return clockTicksPerSecond;
}

/**
 * User + system CPU seconds a process has used so far, from /proc/<pid>/stat (fields 14 and 15),
 * or undefined where /proc is not available. Threads (RocksDB's background work) are included.
 */
export function cpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces; fields after it are plain.
  const afterName = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const userTicks = Number(afterName[11]);
  const systemTicks = Number(afterName[12]);
  if (!Number.isFinite(userTicks) || !Number.isFinite(systemTicks)) return undefined;
  return (userTicks + systemTicks) / ticksPerSecond();
}

/** Busy and total CPU seconds of the whole machine so far (all cores), from /proc/stat. */
export function machineCpuSeconds(): { busySec: number; totalSec: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  // First line: "cpu  user nice system idle iowait irq softirq steal ..." in clock ticks.
  const fields = (stat.split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  if (fields.length < 8 || fields.some((f) => !Number.isFinite(f))) return undefined;
  const total = fields.reduce((sum, f) => sum + f, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busySec: (total - idle) / ticksPerSecond(), totalSec: total / ticksPerSecond() };
}
