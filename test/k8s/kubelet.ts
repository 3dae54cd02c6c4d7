/**
 * A test-only kubelet (and scheduler) in TypeScript: it runs every pod's containers as local
 * processes, so a real control plane (controlPlane.ts) can drive StatefulSets without a container
 * runtime.
 *
 * - Node (nodeRegistration.ts): registers a Node (Ready, capacity/allocatable from this machine,
 *   InternalIP 127.0.0.1), renews its Lease in kube-node-lease every 10 s and posts node status
 *   every 60 s, so the node lifecycle controller sees a healthy node.
 * - Scheduler: binds every pending pod without nodeName (schedulerName default-scheduler) to this
 *   node through the Binding subresource, after provisioning a PV for each Pending claim the pod
 *   uses (volumes.ts). Only nodeSelector is checked; affinity, taints and resource requests are
 *   not: there is one node and every pod fits.
 * - Pods: each pod bound here gets its own loopback IP 127.0.x.y (podIps.ts) and its containers
 *   run as local processes (podWorker.ts, containerRun.ts): image -> command through `images`,
 *   env and $(VAR) expansion as in Kubernetes, volumes as local directories, and every occurrence
 *   of a volumeMount's mountPath in args, command, env values and workingDir rewritten to the
 *   local directory of that volume (see podSpec.ts; this is how a container that expects
 *   /var/lib/dynamokv finds its PVC directory). Probes, status, restarts with back-off and graceful
 *   deletion behave as the kubelet's.
 * - Watch: its own list+watch loop of all pods (listWatch.ts) that re-lists after any error.
 *
 * Not done: container isolation of any kind (processes run as this user), resource limits, init
 * containers beyond running them in order, ephemeral containers, image changes of a running pod,
 * exec/grpc probes, lifecycle hooks, refreshing configMap/secret volume files, pod logs/exec
 * through the API.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

import type { V1Pod } from '@kubernetes/client-node';

import { connect, describeError, isConflict, isNotFound, type KubeApis } from './kubeApi';
import { ListWatch } from './listWatch';
import { NodeRegistration } from './nodeRegistration';
import { PodIpPool } from './podIps';
import type { ImageCommand } from './podSpec';
import { PodWorker, type WorkerContext } from './podWorker';
import { OutputBuffer } from './processes';
import { claimNames, provisionClaims, reclaimReleasedVolumes } from './volumes';

export type { ImageCommand } from './podSpec';

export interface KubeletOptions {
  readonly kubeconfigPath: string;
  /** Default 'dynamokv-test-node'. */
  readonly nodeName?: string;
  /** image name (exact, or without its tag) -> the local command that plays it. */
  readonly images: Readonly<Record<string, ImageCommand>>;
  /** Default '127.0.': pods get 127.0.x.y with x >= 1. */
  readonly podIpPrefix?: string;
  /** Volumes and per-pod directories; a temporary directory (removed by stop()) when absent. */
  readonly workDir?: string;
  /** Every kubelet log line and every container output line. */
  readonly log?: (line: string) => void;
}

export interface Kubelet {
  /** Kills every container process (SIGTERM, then SIGKILL after 5 s) and stops all loops. */
  stop(): Promise<void>;
  /** The pod's first container's running process and the pod IP, while it runs. */
  podProcess(namespace: string, name: string): { pid: number; ip: string } | undefined;
  /** The pod's container output (kept after the pod is gone, bounded). */
  output(namespace: string, name: string): string;
  /** The kubelet's own log, bounded, for a failing test to print. */
  logs(): string;
}

const HOST_IP = '127.0.0.1';
const LEASE_RENEW_MS = 10_000;
const NODE_STATUS_MS = 60_000;
const RECLAIM_MS = 5_000;
const SCHEDULE_RETRY_MS = 2_000;
const PODS_MAX = 110;
const STOP_GRACE_MS = 5_000;
const POD_OUTPUTS_MAX = 200;
const POD_OUTPUT_CHARS_MAX = 256_000;
const LOG_CHARS_MAX = 256_000;
const FINISHED_UIDS_MAX = 10_000;

export async function startKubelet(options: KubeletOptions): Promise<Kubelet> {
  const apis = await connect(options.kubeconfigPath);
  const ownsWorkDir = options.workDir === undefined;
  const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'dynamokv-kubelet-'));
  const kubelet = new TestKubelet(apis, options, workDir, ownsWorkDir);
  try {
    await kubelet.start();
  } catch (error) {
    await kubelet.stop();
    throw error;
  }
  return kubelet;
}

class TestKubelet implements Kubelet {
  private readonly nodeName: string;
  private readonly ips: PodIpPool;
  private readonly workers = new Map<string, PodWorker>();
  private readonly finishedUids = new Set<string>();
  private readonly finalizing = new Set<string>();
  private readonly scheduling = new Set<string>();
  private readonly outputs = new Map<string, OutputBuffer>();
  private readonly ownLog = new OutputBuffer(LOG_CHARS_MAX);
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly scheduleTimers = new Map<string, NodeJS.Timeout>();
  private readonly podCache = new Map<string, V1Pod>();
  private readonly capacity: Record<string, string>;
  private readonly context: WorkerContext;
  private readonly watch: ListWatch<V1Pod>;
  private readonly node: NodeRegistration;
  private stopped = false;

  constructor(
    private readonly apis: KubeApis,
    private readonly options: KubeletOptions,
    private readonly workDir: string,
    private readonly ownsWorkDir: boolean,
  ) {
    this.nodeName = options.nodeName ?? 'dynamokv-test-node';
    this.ips = new PodIpPool(options.podIpPrefix ?? '127.0.');
    this.capacity = { cpu: String(cpus().length), memory: `${Math.floor(totalmem() / 1024)}Ki`, pods: String(PODS_MAX), 'ephemeral-storage': '100Gi' };
    this.node = new NodeRegistration(apis, this.nodeName, HOST_IP, this.capacity, (line) => this.log(line));
    const server = new URL(apis.config.getCurrentCluster()?.server ?? 'https://127.0.0.1:443');
    this.context = {
      apis,
      nodeName: this.nodeName,
      workDir,
      images: options.images,
      ips: this.ips,
      hostIp: HOST_IP,
      nodeCapacity: this.capacity,
      baseEnv: {
        PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
        ...(process.env.HOME === undefined ? {} : { HOME: process.env.HOME }),
        ...(process.env.TMPDIR === undefined ? {} : { TMPDIR: process.env.TMPDIR }),
        // The real values would be the `kubernetes` Service's cluster IP, which nothing routes here.
        KUBERNETES_SERVICE_HOST: server.hostname,
        KUBERNETES_SERVICE_PORT: server.port === '' ? '443' : server.port,
      },
      log: (line) => this.log(line),
      output: (namespace, name, line) => {
        this.podOutput(namespace, name).append(`${line}\n`);
        this.options.log?.(`[${namespace}/${name}] ${line}`);
      },
      finished: (worker) => this.forget(worker),
    };
    this.watch = new ListWatch<V1Pod>({
      name: 'pods',
      apis,
      list: async () => {
        const list = await apis.core.listPodForAllNamespaces();
        return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
      },
      watchPath: '/api/v1/pods',
      onList: (pods) => this.onList(pods),
      onEvent: (type, pod) => (type === 'DELETED' ? this.onDeleted(pod) : this.onPod(pod)),
      log: (line) => this.log(line),
    });
  }

  async start(): Promise<void> {
    await this.node.register();
    await this.node.renewLease();
    this.every(LEASE_RENEW_MS, () => this.node.renewLease());
    this.every(NODE_STATUS_MS, () => this.node.postStatus());
    this.every(RECLAIM_MS, () => reclaimReleasedVolumes(this.context));
    this.watch.start();
    await this.watch.synced;
    this.log(`kubelet for node ${this.nodeName} started (work dir ${this.workDir})`);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of [...this.timers, ...this.scheduleTimers.values()]) clearTimeout(timer);
    await this.watch.stop();
    await Promise.all([...this.workers.values()].map((worker) => worker.remove(STOP_GRACE_MS)));
    this.ips.releaseAll();
    if (this.ownsWorkDir) rmSync(this.workDir, { recursive: true, force: true });
  }

  podProcess(namespace: string, name: string): { pid: number; ip: string } | undefined {
    for (const worker of this.workers.values()) {
      if (worker.namespace === namespace && worker.name === name && !worker.done) return worker.podProcess();
    }
    return undefined;
  }

  output(namespace: string, name: string): string {
    return this.outputs.get(`${namespace}/${name}`)?.toString() ?? '';
  }

  logs(): string {
    return this.ownLog.toString();
  }

  private log(line: string): void {
    this.ownLog.append(`${new Date().toISOString()} ${line}\n`);
    this.options.log?.(line);
  }

  private podOutput(namespace: string, name: string): OutputBuffer {
    const key = `${namespace}/${name}`;
    let buffer = this.outputs.get(key);
    if (buffer === undefined) {
      buffer = new OutputBuffer(POD_OUTPUT_CHARS_MAX);
      this.outputs.set(key, buffer);
      const oldest = this.outputs.keys().next().value;
      if (this.outputs.size > POD_OUTPUTS_MAX && oldest !== undefined) this.outputs.delete(oldest);
    }
    return buffer;
  }

  /** Runs `task` every `intervalMs`, one run at a time; failures are logged, never thrown. */
  private every(intervalMs: number, task: () => Promise<void>): void {
    const schedule = () => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void run();
      }, intervalMs);
      this.timers.add(timer);
    };
    const run = async () => {
      if (this.stopped) return;
      try {
        await task();
      } catch (error) {
        this.log(`periodic task failed: ${describeError(error)}`);
      }
      if (!this.stopped) schedule();
    };
    schedule();
  }

  // ----- pods -----

  private onList(pods: V1Pod[]): void {
    const seen = new Set(pods.map((pod) => pod.metadata?.uid ?? ''));
    this.podCache.clear();
    for (const pod of pods) this.onPod(pod);
    for (const worker of [...this.workers.values()]) if (!seen.has(worker.uid)) void worker.remove();
  }

  private onDeleted(pod: V1Pod): void {
    const uid = pod.metadata?.uid ?? '';
    this.podCache.delete(uid);
    this.finalizing.delete(uid);
    void this.workers.get(uid)?.remove();
  }

  private onPod(pod: V1Pod): void {
    if (this.stopped) return;
    const uid = pod.metadata?.uid ?? '';
    this.podCache.set(uid, pod);
    const nodeName = pod.spec?.nodeName ?? '';
    if (nodeName === this.nodeName) return this.runPod(uid, pod);
    if (nodeName === '' && pod.metadata?.deletionTimestamp == null && (pod.spec?.schedulerName ?? 'default-scheduler') === 'default-scheduler') this.schedule(uid);
  }

  private runPod(uid: string, pod: V1Pod): void {
    if (this.finishedUids.has(uid)) {
      // A pod that ended without being deleted, now being deleted: finalize it.
      if (pod.metadata?.deletionTimestamp != null && !this.finalizing.has(uid)) {
        this.finalizing.add(uid);
        const { name = '', namespace = 'default' } = pod.metadata;
        this.apis.core.deleteNamespacedPod({ name, namespace, body: { gracePeriodSeconds: 0, preconditions: { uid } } }).catch((error: unknown) => {
          if (!isNotFound(error) && !isConflict(error)) this.log(`finalizing ${namespace}/${name} failed: ${describeError(error)}`);
        });
      }
      return;
    }
    let worker = this.workers.get(uid);
    if (worker === undefined) {
      worker = new PodWorker(pod, this.context);
      if (worker.done) return this.forget(worker);
      this.workers.set(uid, worker);
    }
    worker.update(pod);
  }

  private forget(worker: PodWorker): void {
    this.workers.delete(worker.uid);
    this.finishedUids.add(worker.uid);
    if (this.finishedUids.size > FINISHED_UIDS_MAX) {
      const oldest = this.finishedUids.values().next().value;
      if (oldest !== undefined) this.finishedUids.delete(oldest);
    }
  }

  // ----- scheduling -----

  private schedule(uid: string): void {
    if (this.scheduling.has(uid) || this.scheduleTimers.has(uid)) return;
    this.scheduling.add(uid);
    void this.trySchedule(uid).then(
      (waitReason) => {
        this.scheduling.delete(uid);
        if (waitReason !== undefined) this.retrySchedule(uid, waitReason);
      },
      (error: unknown) => {
        this.scheduling.delete(uid);
        this.retrySchedule(uid, describeError(error));
      },
    );
  }

  private retrySchedule(uid: string, reason: string): void {
    if (this.stopped) return;
    const pod = this.podCache.get(uid);
    this.log(`pod ${pod?.metadata?.namespace}/${pod?.metadata?.name} not scheduled yet: ${reason}`);
    this.scheduleTimers.set(
      uid,
      setTimeout(() => {
        this.scheduleTimers.delete(uid);
        const current = this.podCache.get(uid);
        if (current !== undefined) this.onPod(current);
      }, SCHEDULE_RETRY_MS),
    );
  }

  /** Binds the pod to this node; returns why it must wait, or undefined when bound (or gone). */
  private async trySchedule(uid: string): Promise<string | undefined> {
    const pod = this.podCache.get(uid);
    if (pod === undefined || (pod.spec?.nodeName ?? '') !== '' || pod.metadata?.deletionTimestamp != null) return undefined;
    const { name = '', namespace = 'default' } = pod.metadata ?? {};
    const labels = this.node.labels();
    const mismatch = Object.entries(pod.spec?.nodeSelector ?? {}).find(([key, value]) => labels[key] !== value);
    if (mismatch !== undefined) return `nodeSelector ${mismatch[0]}=${mismatch[1]} does not match node ${this.nodeName}`;
    if (this.workers.size >= PODS_MAX) return `node ${this.nodeName} runs ${PODS_MAX} pods already`;
    if (claimNames(pod).length > 0) {
      const waiting = await provisionClaims(this.context, pod);
      if (waiting !== undefined) return waiting;
    }
    try {
      await this.apis.core.createNamespacedPodBinding({ name, namespace, body: { apiVersion: 'v1', kind: 'Binding', metadata: { name, namespace, uid }, target: { apiVersion: 'v1', kind: 'Node', name: this.nodeName } } });
      this.log(`bound pod ${namespace}/${name} to ${this.nodeName}`);
    } catch (error) {
      // 409: bound already (by an earlier attempt); 404: the pod is gone.
      if (!isConflict(error) && !isNotFound(error)) throw error;
    }
    return undefined;
  }
}
