/**
 * One container of a pod run by the test kubelet: a local process (in its own process group), its
 * probes, its restarts and its status as the API reports it.
 *
 * Restarts follow the pod's restartPolicy (Always; OnFailure: non-zero exit only; Never), and for
 * init containers a successful exit is never restarted. A restart waits a back-off that doubles
 * from 1 s up to 30 s and starts again at 1 s once a run lasted 60 s (Kubernetes uses 10 s to
 * 5 min; tests need shorter). A liveness or startup probe that fails kills the process with the
 * grace period and the restart policy decides what follows, as in the kubelet.
 */
import { constants } from 'node:os';

import type { V1Container, V1ContainerState, V1ContainerStatus, V1Probe } from '@kubernetes/client-node';

import { ProbeLoop } from './prober';
import { ManagedProcess, type ProcessExit } from './processes';

export interface LaunchSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
}

export interface ContainerHooks {
  readonly podIp: string;
  readonly restartPolicy: string;
  /** The grace period for a probe-triggered kill. */
  graceMs(probe: V1Probe | undefined): number;
  /** A line of the container's output. */
  output(line: string): void;
  /** Something in status() changed; also called after every exit. */
  changed(): void;
  log(line: string): void;
}

const BACKOFF_INITIAL_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
const BACKOFF_RESET_AFTER_RUN_MS = 60_000;
const OUTPUT_CHARS_MAX = 256_000;

type State =
  | { kind: 'waiting'; reason: string; message?: string }
  | { kind: 'running'; startedAt: Date }
  | { kind: 'terminated'; exitCode: number; signal?: number; reason: string; message?: string; startedAt: Date; finishedAt: Date };

export class ContainerRun {
  private process: ManagedProcess | undefined;
  private state: State = { kind: 'waiting', reason: 'ContainerCreating' };
  private lastTerminated: State | undefined;
  private restartCount = 0;
  private started = false;
  private readiness: ProbeLoop | undefined;
  private probes: ProbeLoop[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_INITIAL_MS;
  private stopping = false;
  /** True once an init container exited 0; false while it has not (yet). */
  succeeded = false;
  /** True when the container exited and will not be started again. */
  finished = false;

  constructor(
    readonly spec: V1Container,
    private readonly launch: LaunchSpec,
    private readonly hooks: ContainerHooks,
    private readonly init: boolean,
  ) {}

  /** False until the first start(); restarts after that are this class's own business. */
  get everStarted(): boolean {
    return this.process !== undefined;
  }

  get pid(): number | undefined {
    return this.process?.alive === true ? this.process.pid : undefined;
  }

  get ready(): boolean {
    if (this.process?.alive !== true || !this.started) return false;
    return this.readiness === undefined || this.readiness.passing;
  }

  /** The exit code of the last run, once terminated. */
  get exitCode(): number | undefined {
    return this.state.kind === 'terminated' ? this.state.exitCode : undefined;
  }

  start(): void {
    if (this.stopping) return;
    const name = this.spec.name;
    this.process = ManagedProcess.start({
      command: this.launch.command,
      args: this.launch.args,
      env: this.launch.env,
      cwd: this.launch.cwd,
      outputCharsMax: OUTPUT_CHARS_MAX,
      onLine: (line) => this.hooks.output(line),
      processGroup: true,
    });
    const run = this.process;
    const startedAt = new Date();
    this.state = { kind: 'running', startedAt };
    this.started = this.spec.startupProbe === undefined;
    this.hooks.log(`container ${name} started (pid ${run.pid}): ${this.launch.command} ${this.launch.args.join(' ')}`);
    if (!this.init) this.startProbes(run);
    void run.exited.then((exit) => this.onExit(run, exit, startedAt));
    this.hooks.changed();
  }

  /** Stops for good: no restart; SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    this.stopProbes();
    if (this.process?.alive === true) await this.process.stop(graceMs);
    this.finished = true;
  }

  status(image: string): V1ContainerStatus {
    const running = this.process?.alive === true;
    return {
      name: this.spec.name,
      image,
      imageID: `local://${image}`,
      containerID: this.process === undefined ? undefined : `local://${this.process.pid}`,
      ready: this.ready,
      started: running && this.started,
      restartCount: this.restartCount,
      state: apiState(this.state),
      lastState: this.lastTerminated === undefined ? {} : apiState(this.lastTerminated),
    };
  }

  private startProbes(run: ManagedProcess): void {
    const ip = this.hooks.podIp;
    const startMain = () => {
      if (this.spec.readinessProbe !== undefined) {
        this.readiness = new ProbeLoop(this.spec.readinessProbe, this.spec, ip, false, () => this.hooks.changed());
        this.probes.push(this.readiness);
        this.readiness.start();
      }
      const liveness = this.spec.livenessProbe;
      if (liveness !== undefined) {
        const loop = new ProbeLoop(liveness, this.spec, ip, true, (ok, message) => {
          if (!ok) this.killForProbe(run, 'liveness', liveness, message);
        });
        this.probes.push(loop);
        loop.start();
      }
    };
    const startup = this.spec.startupProbe;
    if (startup === undefined) return startMain();
    const loop = new ProbeLoop(startup, this.spec, ip, false, (ok, message) => {
      if (!ok) return this.killForProbe(run, 'startup', startup, message);
      loop.stop();
      this.started = true;
      startMain();
      this.hooks.changed();
    });
    this.probes.push(loop);
    loop.start();
  }

  private killForProbe(run: ManagedProcess, kind: string, probe: V1Probe, message: string): void {
    if (!run.alive || this.stopping) return;
    this.hooks.log(`container ${this.spec.name} failed its ${kind} probe (${message}); killing it`);
    this.stopProbes();
    void run.stop(this.hooks.graceMs(probe));
  }

  private stopProbes(): void {
    for (const probe of this.probes) probe.stop();
    this.probes = [];
    this.readiness = undefined;
  }

  private onExit(run: ManagedProcess, exit: ProcessExit, startedAt: Date): void {
    if (run !== this.process) return;
    this.stopProbes();
    const signalNumber = exit.signal === null ? undefined : constants.signals[exit.signal];
    const exitCode = exit.code ?? 128 + (signalNumber ?? 0);
    const finishedAt = new Date();
    this.state = { kind: 'terminated', exitCode, signal: signalNumber, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt, finishedAt };
    this.hooks.log(`container ${this.spec.name} exited (code ${exit.code}, signal ${exit.signal})`);
    if (this.init && exitCode === 0) this.succeeded = true;
    if (this.stopping || !this.shouldRestart(exitCode)) {
      this.finished = true;
      this.hooks.changed();
      return;
    }
    const ranMs = finishedAt.getTime() - startedAt.getTime();
    if (ranMs >= BACKOFF_RESET_AFTER_RUN_MS) this.backoffMs = BACKOFF_INITIAL_MS;
    const delayMs = this.backoffMs;
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    this.lastTerminated = this.state;
    this.state = { kind: 'waiting', reason: 'CrashLoopBackOff', message: `back-off ${Math.round(delayMs / 1000)}s restarting failed container=${this.spec.name}` };
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restartCount++;
      this.start();
    }, delayMs);
    this.hooks.changed();
  }

  private shouldRestart(exitCode: number): boolean {
    if (this.init) return exitCode !== 0 && this.hooks.restartPolicy !== 'Never';
    if (this.hooks.restartPolicy === 'Never') return false;
    return this.hooks.restartPolicy !== 'OnFailure' || exitCode !== 0;
  }
}

function apiState(state: State): V1ContainerState {
  switch (state.kind) {
    case 'waiting':
      return { waiting: { reason: state.reason, message: state.message } };
    case 'running':
      return { running: { startedAt: state.startedAt } };
    case 'terminated':
      return { terminated: { exitCode: state.exitCode, signal: state.signal, reason: state.reason, message: state.message, startedAt: state.startedAt, finishedAt: state.finishedAt } };
  }
}
