/**
 * The test kubelet's handling of one pod bound to its node, from start to finalization.
 *
 * Start: ConfigMaps and Secrets the pod refers to are fetched, volumes prepared (a claim must be
 * Bound first), a pod IP allocated, each container's environment, command and args built (see
 * podSpec.ts for $(VAR) expansion and the mount path rule), then init containers run one after the
 * other to success and the containers start. Anything missing (an unbound claim, a missing
 * ConfigMap, an image with no local command) leaves the pod Pending with the reason in its status,
 * and the start is retried with a back-off up to 10 s.
 *
 * Deletion (deletionTimestamp set): every process gets SIGTERM, SIGKILL after the grace period
 * (metadata.deletionGracePeriodSeconds), the final status is written, and the pod is deleted with
 * gracePeriodSeconds 0 and its uid as precondition, as the kubelet finalizes pods.
 *
 * Work for one pod is serialized: updates arriving during a sync mark it dirty and it runs again.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import type { V1Container, V1ContainerStatus, V1Pod, V1PodCondition, V1PodStatus, V1Probe } from '@kubernetes/client-node';

import { ContainerRun, type LaunchSpec } from './containerRun';
import { describeError, isNotFound, statusCode } from './kubeApi';
import type { PodIpPool } from './podIps';
import { containerEnvironment, expandVariables, findImageCommand, mountPathRewriter, referencedConfigObjects, type ConfigSources, type ImageCommand, type PodFacts } from './podSpec';
import { fetchConfigSources, prepareVolumes, type VolumeContext } from './volumes';

export interface WorkerContext extends VolumeContext {
  readonly images: Readonly<Record<string, ImageCommand>>;
  readonly ips: PodIpPool;
  readonly hostIp: string;
  readonly nodeCapacity: Readonly<Record<string, string>>;
  /** PATH, KUBERNETES_SERVICE_HOST/PORT and the like, under every container's own environment. */
  readonly baseEnv: Readonly<Record<string, string>>;
  /** Appends a line to the pod's retained output. */
  output(namespace: string, name: string, line: string): void;
  /** The worker is done (pod finalized or gone); the kubelet forgets it. */
  finished(worker: PodWorker): void;
}

const RETRY_INITIAL_MS = 1_000;
const RETRY_MAX_MS = 10_000;
/** Grace period when the pod vanished from the API (force deletion): no one waits for it any more. */
const GONE_GRACE_MS = 2_000;

type Phase = 'pending' | 'running' | 'terminating' | 'done';

export class PodWorker {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  private phase: Phase = 'pending';
  private ip: string | undefined;
  private readonly podDir: string;
  private containers: ContainerRun[] = [];
  private initContainers: ContainerRun[] = [];
  /** Why containers that have no ContainerRun yet are not running. */
  private waiting: { reason: string; message: string } = { reason: 'ContainerCreating', message: '' };
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_INITIAL_MS;
  private syncing = false;
  private dirty = false;
  private lastStatusJson = '';
  private readonly startTime = new Date();
  private readonly transitions = new Map<string, { status: string; at: Date }>();

  constructor(
    private pod: V1Pod,
    private readonly ctx: WorkerContext,
  ) {
    this.uid = pod.metadata?.uid ?? '';
    this.namespace = pod.metadata?.namespace ?? 'default';
    this.name = pod.metadata?.name ?? '';
    this.podDir = join(ctx.workDir, 'pods', this.uid);
    // A pod that already ended (seen again after a kubelet restart) is left as it is.
    const apiPhase = pod.status?.phase;
    if ((apiPhase === 'Succeeded' || apiPhase === 'Failed') && pod.metadata?.deletionTimestamp == null) this.phase = 'done';
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  /** The first container's running process and the pod IP. */
  podProcess(): { pid: number; ip: string } | undefined {
    const pid = this.containers[0]?.pid;
    return pid === undefined || this.ip === undefined ? undefined : { pid, ip: this.ip };
  }

  update(pod: V1Pod): void {
    this.pod = pod;
    this.requestSync();
  }

  /** The pod is gone from the API (or the kubelet stops): kill everything, no API calls. */
  async remove(graceMs = GONE_GRACE_MS): Promise<void> {
    if (this.phase === 'done') return;
    this.phase = 'terminating';
    await this.killAll(graceMs);
    this.cleanup();
  }

  private requestSync(): void {
    if (this.syncing) {
      this.dirty = true;
      return;
    }
    this.syncing = true;
    void (async () => {
      try {
        do {
          this.dirty = false;
          await this.sync();
        } while (this.dirty && this.phase !== 'done');
      } finally {
        this.syncing = false;
      }
    })();
  }

  private async sync(): Promise<void> {
    if (this.phase === 'done') return;
    try {
      if (this.pod.metadata?.deletionTimestamp != null) return await this.terminate();
      if (this.phase === 'pending') await this.startPod();
      if (this.phase === 'running') this.advanceInit();
      await this.writeStatus();
    } catch (error) {
      this.log(`sync failed: ${describeError(error)}`);
      this.retryLater();
    }
  }

  private retryLater(): void {
    if (this.retryTimer !== undefined || this.phase === 'done') return;
    const delayMs = this.retryMs;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.requestSync();
    }, delayMs);
  }

  private async startPod(): Promise<void> {
    const sources = await fetchConfigSources(this.ctx, this.namespace, referencedConfigObjects(this.pod));
    mkdirSync(this.podDir, { recursive: true });
    const facts: PodFacts = { podIp: this.ip ?? '', hostIp: this.ctx.hostIp, nodeName: this.ctx.nodeName };
    const volumes = await prepareVolumes(this.ctx, this.pod, this.podDir, sources, facts, this.ctx.nodeCapacity);
    if (!volumes.ok) return this.wait(volumes.reason, volumes.message);
    this.ip ??= this.ctx.ips.allocate();
    const launchFacts = { ...facts, podIp: this.ip };
    const launches = new Map<V1Container, LaunchSpec>();
    for (const container of [...(this.pod.spec?.initContainers ?? []), ...(this.pod.spec?.containers ?? [])]) {
      const launch = this.launchSpec(container, launchFacts, sources, volumes.dirs);
      if ('reason' in launch) return this.wait(launch.reason, launch.message);
      launches.set(container, launch);
    }
    const hooks = (container: V1Container) => ({
      podIp: this.ip ?? '',
      restartPolicy: this.pod.spec?.restartPolicy ?? 'Always',
      graceMs: (probe: V1Probe | undefined) => 1000 * (probe?.terminationGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30),
      output: (line: string) => this.ctx.output(this.namespace, this.name, (this.pod.spec?.containers.length ?? 1) > 1 ? `[${container.name}] ${line}` : line),
      changed: () => this.requestSync(),
      log: (line: string) => this.log(line),
    });
    const run = (container: V1Container, init: boolean) => new ContainerRun(container, launches.get(container) as LaunchSpec, hooks(container), init);
    this.initContainers = (this.pod.spec?.initContainers ?? []).map((container) => run(container, true));
    this.containers = (this.pod.spec?.containers ?? []).map((container) => run(container, false));
    this.phase = 'running';
    this.retryMs = RETRY_INITIAL_MS;
  }

  /** Starts the next init container, or the containers once every init container succeeded. */
  private advanceInit(): void {
    for (const init of this.initContainers) {
      if (init.succeeded) continue;
      if (!init.everStarted) init.start();
      return;
    }
    for (const container of this.containers) if (!container.everStarted) container.start();
  }

  private wait(reason: string, message: string): void {
    if (this.waiting.message !== message) this.log(`waiting: ${message}`);
    this.waiting = { reason, message };
    this.retryLater();
  }

  private launchSpec(container: V1Container, facts: PodFacts, sources: ConfigSources, dirs: Map<string, string>): LaunchSpec | { reason: string; message: string } {
    const image = container.image ?? '';
    const imageCommand = findImageCommand(this.ctx.images, image);
    if (imageCommand === undefined) return { reason: 'ErrImagePull', message: `container ${container.name}: the test kubelet has no local command for image "${image}"` };
    const { env, problems } = containerEnvironment(container, this.pod, facts, sources, this.ctx.nodeCapacity);
    const mounts: Array<{ mountPath: string; localPath: string }> = [];
    for (const mount of container.volumeMounts ?? []) {
      const dir = dirs.get(mount.name);
      if (dir === undefined) problems.push(`volumeMount ${mount.name}: no such volume`);
      const subPath = mount.subPathExpr !== undefined ? expandVariables(mount.subPathExpr, (name) => env.get(name)) : (mount.subPath ?? '');
      const localPath = join(dir ?? this.podDir, subPath);
      if (subPath !== '') mkdirSync(localPath, { recursive: true });
      mounts.push({ mountPath: mount.mountPath, localPath });
    }
    if (problems.length > 0) return { reason: 'CreateContainerConfigError', message: `container ${container.name}: ${problems.join('; ')}` };
    const rewrite = mountPathRewriter(mounts);
    const expand = (text: string) => rewrite(expandVariables(text, (name) => env.get(name)));
    const finalEnv: Record<string, string> = {};
    for (const [name, value] of env) finalEnv[name] = rewrite(value);
    const workingDir = container.workingDir === undefined ? undefined : rewrite(container.workingDir);
    const prepared: V1Container = {
      ...container,
      command: container.command?.map(expand),
      args: container.args?.map(expand),
      env: Object.entries(finalEnv).map(([name, value]) => ({ name, value })),
      envFrom: undefined,
      workingDir,
    };
    const mapped = imageCommand(prepared, this.pod);
    const hostname = this.pod.spec?.hostname ?? this.name;
    return {
      command: mapped.command,
      args: mapped.args,
      env: { ...this.ctx.baseEnv, HOSTNAME: hostname, ...finalEnv, ...mapped.env },
      cwd: workingDir !== undefined && existsSync(workingDir) ? workingDir : this.podDir,
    };
  }

  private async terminate(): Promise<void> {
    if (this.phase === 'terminating') return;
    const wasPending = this.phase === 'pending';
    this.phase = 'terminating';
    const graceSeconds = this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30;
    if (!wasPending) this.log(`terminating (grace ${graceSeconds} s)`);
    await this.killAll(graceSeconds * 1000);
    try {
      await this.writeStatus();
      // The grace period goes in the body: the apiserver ignores query options when a body is sent.
      await this.ctx.apis.core.deleteNamespacedPod({ name: this.name, namespace: this.namespace, body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } } });
    } catch (error) {
      // 404: already gone; 409: the uid precondition failed, a new pod has the name.
      if (!isNotFound(error) && statusCode(error) !== 409) this.log(`finalizing failed: ${describeError(error)}`);
    }
    this.cleanup();
  }

  private async killAll(graceMs: number): Promise<void> {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await Promise.all([...this.initContainers, ...this.containers].map((container) => container.stop(graceMs)));
  }

  private cleanup(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    if (this.ip !== undefined) this.ctx.ips.release(this.ip);
    rmSync(this.podDir, { recursive: true, force: true });
    this.ctx.finished(this);
  }

  private async writeStatus(): Promise<void> {
    const status = this.status();
    const json = JSON.stringify(status);
    if (json === this.lastStatusJson) return;
    try {
      await this.ctx.apis.core.patchNamespacedPodStatus({ name: this.name, namespace: this.namespace, body: { status } }, this.ctx.apis.strategicMerge);
      this.lastStatusJson = json;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  private status(): V1PodStatus {
    const image = (container: V1Container) => container.image ?? '';
    const statuses = (specs: V1Container[], runs: ContainerRun[]): V1ContainerStatus[] =>
      specs.map((spec, index) => runs[index]?.status(image(spec)) ?? { name: spec.name, image: image(spec), imageID: '', ready: false, restartCount: 0, started: false, state: { waiting: { reason: this.waiting.reason, message: this.waiting.message || undefined } } });
    const specs = this.pod.spec?.containers ?? [];
    const containerStatuses = statuses(specs, this.containers);
    const initialized = this.initContainers.every((init) => init.succeeded) && this.phase !== 'pending';
    const ready = this.phase === 'running' && initialized && this.containers.length > 0 && this.containers.every((container) => container.ready);
    const notReady = containerStatuses.filter((status) => !status.ready).map((status) => status.name);
    const readyMessage = ready ? undefined : `containers with unready status: [${notReady.join(' ')}]`;
    const conditions: V1PodCondition[] = [
      this.condition('PodReadyToStartContainers', this.ip !== undefined),
      this.condition('Initialized', initialized, initialized ? undefined : 'ContainersNotInitialized'),
      this.condition('Ready', ready, ready ? undefined : 'ContainersNotReady', readyMessage),
      this.condition('ContainersReady', ready, ready ? undefined : 'ContainersNotReady', readyMessage),
      this.condition('PodScheduled', true),
    ];
    return {
      phase: this.podPhase(),
      conditions,
      hostIP: this.ctx.hostIp,
      hostIPs: [{ ip: this.ctx.hostIp }],
      podIP: this.ip,
      podIPs: this.ip === undefined ? undefined : [{ ip: this.ip }],
      startTime: this.startTime,
      initContainerStatuses: this.pod.spec?.initContainers === undefined ? undefined : statuses(this.pod.spec.initContainers, this.initContainers),
      containerStatuses,
    };
  }

  private podPhase(): string {
    if (this.initContainers.some((init) => init.finished && !init.succeeded)) return 'Failed';
    if (this.phase === 'pending' || !this.initContainers.every((init) => init.succeeded)) return this.phase === 'terminating' ? 'Failed' : 'Pending';
    if (this.containers.length === 0) return 'Failed';
    if (!this.containers.every((container) => container.finished)) return 'Running';
    return this.containers.every((container) => container.exitCode === 0) ? 'Succeeded' : 'Failed';
  }

  private condition(type: string, isTrue: boolean, reason?: string, message?: string): V1PodCondition {
    const status = isTrue ? 'True' : 'False';
    const previous = this.transitions.get(type);
    const at = previous !== undefined && previous.status === status ? previous.at : new Date();
    this.transitions.set(type, { status, at });
    return { type, status, reason, message, lastTransitionTime: at, lastProbeTime: undefined };
  }

  private log(line: string): void {
    this.ctx.log(`pod ${this.namespace}/${this.name}: ${line}`);
  }
}
