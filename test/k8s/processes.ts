/**
 * Local processes for the test control plane and the test kubelet: each one's output goes to a
 * bounded buffer (and, line by line, to an optional log callback), and stop() is SIGTERM, a bounded
 * wait, then SIGKILL. Every process started here is also killed when this Node process exits, so a
 * crashed test run does not leave an apiserver or a pod behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** The last `charsMax` characters written to it; older output is dropped, and counted. */
export class OutputBuffer {
  private text = '';
  private droppedChars = 0;

  constructor(private readonly charsMax: number) {}

  append(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.charsMax) {
      const excess = this.text.length - this.charsMax;
      this.droppedChars += excess;
      this.text = this.text.slice(excess);
    }
  }

  toString(): string {
    return this.droppedChars > 0 ? `[... ${this.droppedChars} earlier characters dropped]\n${this.text}` : this.text;
  }
}

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface StartProcessOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Output kept in memory; older output is dropped. */
  readonly outputCharsMax: number;
  /** Called with every complete line of output (stdout and stderr), prefixed by nothing. */
  readonly onLine?: (line: string) => void;
  /**
   * Start the process in its own process group and signal the whole group, so a container whose
   * command is a shell that starts the real server stops together with that server.
   */
  readonly processGroup?: boolean;
}

const LINE_CHARS_MAX = 4_096;
const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous on purpose: 'exit' handlers cannot wait, and kill() is synchronous.
  process.once('exit', () => {
    for (const managed of live) managed.killNow();
  });
}

export class ManagedProcess {
  readonly output: OutputBuffer;
  readonly exited: Promise<ProcessExit>;
  readonly startedAtMs = Date.now();
  private exit: ProcessExit | undefined;
  private partialLine = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly options: StartProcessOptions,
  ) {
    this.output = new OutputBuffer(options.outputCharsMax);
    const onData = (chunk: Buffer) => this.onOutput(chunk.toString('utf8'));
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolveExit) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.exit !== undefined) return;
        this.exit = { code, signal };
        live.delete(this);
        if (this.partialLine !== '') this.options.onLine?.(this.partialLine);
        this.partialLine = '';
        resolveExit(this.exit);
      };
      child.once('exit', finish);
      // A command that cannot be started (ENOENT, EACCES) emits 'error' and never 'exit'.
      child.once('error', (error) => {
        this.onOutput(`failed to start ${options.command}: ${error.message}\n`);
        finish(127, null);
      });
    });
  }

  static start(options: StartProcessOptions): ManagedProcess {
    installExitHook();
    const child = spawn(options.command, [...options.args], {
      env: { ...options.env },
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.processGroup === true,
    });
    const managed = new ManagedProcess(child, options);
    live.add(managed);
    return managed;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The exit, once the process has exited. */
  get exitStatus(): ProcessExit | undefined {
    return this.exit;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.exit !== undefined || this.child.pid === undefined) return;
    try {
      if (this.options.processGroup === true) process.kill(-this.child.pid, signal);
      else this.child.kill(signal);
    } catch {
      // Exited between the check and the signal.
    }
  }

  /** SIGKILL without waiting (for exit hooks). */
  killNow(): void {
    this.signal('SIGKILL');
  }

  /** SIGTERM, then SIGKILL when the process has not exited after `graceMs`; resolves on exit. */
  async stop(graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<ProcessExit> {
    if (this.exit !== undefined) return this.exit;
    this.signal(signal);
    const timer = setTimeout(() => this.signal('SIGKILL'), Math.max(0, graceMs));
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private onOutput(chunk: string): void {
    this.output.append(chunk);
    const onLine = this.options.onLine;
    if (onLine === undefined) return;
    const lines = (this.partialLine + chunk).split('\n');
    this.partialLine = (lines.pop() ?? '').slice(-LINE_CHARS_MAX);
    for (const line of lines) onLine(line.length > LINE_CHARS_MAX ? `${line.slice(0, LINE_CHARS_MAX)}...` : line);
  }
}
