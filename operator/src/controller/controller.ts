/**
 * The controller: list+watch caches of DynamoClusters and of the objects the operator owns (by the
 * managed-by label), a work queue keyed by cluster, and the reconciler. Any change to a cluster or
 * to one of its objects queues that cluster; every cluster is also queued on a slow periodic
 * resync, so a missed event costs at most one resync period.
 */
import type { Logger } from 'pino';
import { CLUSTER_LABEL, MANAGED_BY } from '../core/names';
import type { KubeClient, RawObject } from '../kube/client';
import { EventRecorder } from '../kube/events';
import { Informer } from '../kube/informer';
import { resourcePath, type Kind } from '../kube/paths';
import type { OperatorMetrics } from '../metrics';
import { Reconciler, type Store } from './reconciler';
import { WorkQueue, systemClock } from './workQueue';

export interface ControllerOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly metrics: OperatorMetrics;
  /** Empty: every namespace. */
  readonly namespaces: readonly string[];
  readonly defaultImage: string;
  readonly identity: string;
  readonly workers: number;
  readonly resyncIntervalMs: number;
}

const OWNED_KINDS: readonly Kind[] = ['StatefulSet', 'Pod', 'Service', 'ConfigMap', 'PodDisruptionBudget'];
const QUEUE_KEYS_MAX = 10_000;
const SERVICE_MONITOR_CHECK_MS = 60_000;

/** Several informers (one per watched namespace) seen as one store. */
class InformerGroup implements Store {
  constructor(readonly informers: readonly Informer[]) {}
  get(namespace: string, name: string): RawObject | undefined {
    for (const informer of this.informers) {
      const found = informer.get(namespace, name);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  list(filter: (object: RawObject) => boolean): RawObject[] {
    return this.informers.flatMap((informer) => informer.list(filter));
  }
}

export class Controller {
  private readonly groups = new Map<Kind, InformerGroup>();
  private readonly queue: WorkQueue;
  private resyncTimer: NodeJS.Timeout | undefined;
  private serviceMonitorCache: { atMs: number; available: boolean } | undefined;
  /**
   * False until every cache has listed once. A pass before that would see a cluster without its
   * StatefulSet or pods and could decide from nothing, so events only queue work afterwards
   * (start() then queues every cluster).
   */
  private synced = false;

  constructor(private readonly options: ControllerOptions) {
    const { client, log, metrics } = options;
    const scopes: (string | undefined)[] = options.namespaces.length === 0 ? [undefined] : [...options.namespaces];
    const informersFor = (kind: Kind, labelSelector?: string) =>
      new InformerGroup(scopes.map((namespace) => new Informer({ client, kind, namespace, labelSelector, log, onChange: (_type, object) => this.onChange(kind, object) })));
    this.groups.set('DynamoCluster', informersFor('DynamoCluster'));
    for (const kind of OWNED_KINDS) this.groups.set(kind, informersFor(kind, `app.kubernetes.io/managed-by=${MANAGED_BY}`));
    const reconciler = new Reconciler({
      client,
      log,
      metrics,
      clusters: this.group('DynamoCluster'),
      statefulSets: this.group('StatefulSet'),
      pods: this.group('Pod'),
      recorder: new EventRecorder(client, options.identity, log),
      defaultImage: options.defaultImage,
      serviceMonitorAvailable: () => this.serviceMonitorAvailable(),
    });
    this.queue = new WorkQueue({
      handle: (key) => reconciler.reconcile(key),
      concurrency: options.workers,
      keysMax: QUEUE_KEYS_MAX,
      backoffMsMin: 1_000,
      backoffMsMax: 60_000,
      clock: systemClock,
      onError: (key, error, retryInMs) => log.warn({ err: error, cluster: key, retryInMs }, 'reconcile failed'),
      onDrop: (key) => {
        metrics.queueDropped.inc();
        log.warn({ cluster: key }, 'work queue full; the periodic resync will bring this cluster back');
      },
    });
  }

  private group(kind: Kind): InformerGroup {
    const group = this.groups.get(kind);
    if (group === undefined) throw new Error(`no informers for ${kind}`);
    return group;
  }

  private onChange(kind: Kind, object: RawObject): void {
    const namespace = object.metadata?.namespace;
    const cluster = kind === 'DynamoCluster' ? object.metadata?.name : object.metadata?.labels?.[CLUSTER_LABEL];
    if (namespace === undefined || cluster === undefined || !this.synced) return;
    this.queue.add(`${namespace}/${cluster}`);
    this.options.metrics.queueDepth.set(this.queue.size);
  }

  async start(): Promise<void> {
    const informers = [...this.groups.values()].flatMap((g) => g.informers);
    for (const informer of informers) informer.start();
    await Promise.all(informers.map((i) => i.synced));
    this.synced = true;
    this.options.log.info({ namespaces: this.options.namespaces.length === 0 ? 'all' : this.options.namespaces }, 'caches synced; reconciling');
    this.resyncAll();
    this.resyncTimer = setInterval(() => this.resyncAll(), this.options.resyncIntervalMs);
  }

  private resyncAll(): void {
    for (const cluster of this.group('DynamoCluster').list(() => true)) this.onChange('DynamoCluster', cluster);
  }

  async stop(): Promise<void> {
    if (this.resyncTimer !== undefined) clearInterval(this.resyncTimer);
    await this.queue.stop();
    await Promise.all([...this.groups.values()].flatMap((g) => g.informers).map((i) => i.stop()));
  }

  /** Whether monitoring.coreos.com/v1 is served, checked at most once a minute. */
  private async serviceMonitorAvailable(): Promise<boolean> {
    const now = Date.now();
    if (this.serviceMonitorCache !== undefined && now - this.serviceMonitorCache.atMs < SERVICE_MONITOR_CHECK_MS) return this.serviceMonitorCache.available;
    const groupPath = resourcePath('ServiceMonitor').replace(/\/servicemonitors$/, '');
    const discovery = await this.options.client.get(groupPath);
    const resources = Array.isArray(discovery?.resources) ? (discovery.resources as { name?: string }[]) : [];
    const available = resources.some((r) => r.name === 'servicemonitors');
    this.serviceMonitorCache = { atMs: now, available };
    return available;
  }
}
