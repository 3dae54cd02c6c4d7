/**
 * One reconcile pass for one DynamoCluster: observe (observe.ts), decide (core/machine.ts), then
 * act in this order, which is what makes a restarted operator safe:
 *   1. write the status, with the operation to carry out, guarded by the resourceVersion the
 *      decision was based on (a stale view loses the race and looks again);
 *   2. apply the owned objects with server-side apply (the StatefulSet's replicas come from the
 *      decision, not from the spec);
 *   3. run the one action (init, join, leave, pod or claim deletion);
 *   4. record the events.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { canonicalJson } from '../core/hash';
import { decide } from '../core/machine';
import { names, selectorString } from '../core/names';
import type { Action, Decision, EventRecord, Observed } from '../core/observed';
import { credentialsSecret, desiredObjects } from '../core/resources';
import { normalizeSpec } from '../core/spec';
import { parseStatus } from '../core/status';
import type { ClusterStatus, Json, KubeObject } from '../core/types';
import { isConflict, type KubeClient, type RawObject } from '../kube/client';
import type { EventRecorder } from '../kube/events';
import { isKind, resourcePath } from '../kube/paths';
import type { OperatorMetrics } from '../metrics';
import { NodeAdmin, NodeCallError } from './nodeAdmin';
import { listClaims, podRecords, readHints, readRing, readSecret, statefulSetView, type PodRecord } from './observe';

export interface Store {
  get(namespace: string, name: string): RawObject | undefined;
  list(filter: (object: RawObject) => boolean): RawObject[];
}

export interface ReconcilerDeps {
  readonly client: KubeClient;
  readonly clusters: Store;
  readonly statefulSets: Store;
  readonly pods: Store;
  readonly recorder: EventRecorder;
  readonly metrics: OperatorMetrics;
  readonly log: Logger;
  readonly defaultImage: string;
  readonly serviceMonitorAvailable: () => Promise<boolean>;
}

/** How soon to look again after an action the node asked us to retry (a change is pending). */
const RETRY_ACTION_MS = 2_000;

export class Reconciler {
  /** The freshest copy of each cluster this process wrote, newer than the cache for a moment. */
  private readonly written = new Map<string, RawObject>();

  constructor(private readonly deps: ReconcilerDeps) {}

  /** Answers when to look again (undefined: only on change); throws on failure (the queue backs off). */
  async reconcile(key: string): Promise<number | undefined> {
    const [namespace = '', name = ''] = key.split('/');
    const cached = this.deps.clusters.get(namespace, name);
    if (cached === undefined) {
      this.written.delete(key);
      this.deps.metrics.forget(namespace, name);
      return undefined;
    }
    if (cached.metadata?.deletionTimestamp !== undefined) return undefined;
    const raw = fresher(cached, this.written.get(key));
    const stopTimer = this.deps.metrics.reconcileDuration.startTimer();
    try {
      const outcome = await this.pass(key, raw);
      this.deps.metrics.reconciles.inc({ namespace, cluster: name, result: outcome.result });
      return outcome.requeueAfterMs;
    } catch (error) {
      this.deps.metrics.reconciles.inc({ namespace, cluster: name, result: 'error' });
      this.deps.metrics.reconcileErrors.inc({ namespace, cluster: name });
      throw error;
    } finally {
      stopTimer();
    }
  }

  private async pass(key: string, raw: RawObject): Promise<{ result: 'ok' | 'requeue'; requeueAfterMs: number }> {
    const { client, log } = this.deps;
    const namespace = raw.metadata?.namespace ?? '';
    const name = raw.metadata?.name ?? '';
    const uid = raw.metadata?.uid ?? '';
    const cluster = { name, namespace, uid, generation: raw.metadata?.generation ?? 0 };
    const spec = normalizeSpec(name, (raw.spec ?? null) as Json, { image: this.deps.defaultImage });
    const previous = parseStatus((raw.status ?? null) as Json, selectorString(name));
    const sts = this.deps.statefulSets.get(namespace, names.statefulSet(name));
    if (sts !== undefined && !ownedBy(sts, uid)) throw new Error(`StatefulSet ${namespace}/${name} exists and is not controlled by this DynamoCluster`);
    const secret = await readSecret(client, namespace, name);
    const pods = podRecords(name, this.deps.pods.list((p) => p.metadata?.namespace === namespace && p.metadata?.labels?.['app.kubernetes.io/instance'] === name));
    const podViews = pods.map((p) => p.view);
    const stsView = statefulSetView(sts);
    const admin = new NodeAdmin(secret.credentials?.authToken);
    const ring = await readRing(admin, podViews, log);
    const outdated = stsView?.updateRevision !== undefined && podViews.some((p) => p.revision !== undefined && p.revision !== stsView.updateRevision);
    // Hints are read after the ring: a node the ring showed `left` and that then reports no hint
    // and knows it left holds nothing the others lack.
    const removing = previous.operation?.type === 'ScaleDown' ? previous.operation.pod : undefined;
    const hints = outdated || previous.operation?.type === 'RollingUpdate' || removing !== undefined ? await readHints(admin, podViews, removing) : { backlogs: {}, selfStates: {} };
    const observed: Observed = {
      nowMs: Date.now(), cluster, spec, previous, secret: secret.state, statefulSet: stsView, pods: podViews,
      pvcs: await listClaims(client, namespace, name), ring, hintBacklogs: hints.backlogs, selfStates: hints.selfStates,
    };
    const decision = decide(observed);
    const involved = { namespace, name, uid };
    if (decision.action?.kind === 'CreateSecret') {
      await this.createSecret(cluster);
      await this.recordEvents(involved, decision.events);
      return { result: 'ok', requeueAfterMs: 0 };
    }
    if (!(await this.writeStatus(key, raw, previous, decision.status))) return { result: 'requeue', requeueAfterMs: 0 };
    if (decision.apply) await this.applyObjects(cluster, decision, spec.ok ? spec.spec : undefined);
    const events = [...decision.events];
    const retry = decision.action === undefined ? false : await this.execute(involved, decision.action, pods, admin, events);
    await this.recordEvents(involved, events);
    this.deps.metrics.observeStatus(namespace, name, spec.ok ? spec.spec.replicas : 0, decision.status);
    return { result: retry ? 'requeue' : 'ok', requeueAfterMs: retry ? RETRY_ACTION_MS : decision.requeueAfterMs };
  }

  private async createSecret(cluster: { name: string; namespace: string; uid: string }): Promise<void> {
    const credential = () => randomBytes(32).toString('base64url');
    const secret = credentialsSecret(cluster, { peerSecret: credential(), contextSecret: credential(), authToken: credential() });
    try {
      await this.deps.client.request('POST', resourcePath('Secret', cluster.namespace), secret);
    } catch (error) {
      // Another writer created it first (an earlier pass whose answer was lost): keep theirs.
      if (!isConflict(error)) throw error;
    }
  }

  /** Writes the status when it changed; false when the write lost a race (look again). */
  private async writeStatus(key: string, raw: RawObject, previous: ClusterStatus, status: ClusterStatus): Promise<boolean> {
    if (canonicalJson(previous) === canonicalJson(status) && raw.status !== undefined) return true;
    const namespace = raw.metadata?.namespace ?? '';
    const name = raw.metadata?.name ?? '';
    try {
      const updated = await this.deps.client.mergePatch(resourcePath('DynamoCluster', namespace, name, 'status'), {
        metadata: { resourceVersion: raw.metadata?.resourceVersion },
        status,
      });
      this.written.set(key, updated);
      return true;
    } catch (error) {
      if (!isConflict(error)) throw error;
      this.deps.log.debug({ namespace, cluster: name }, 'status write lost a race; looking again');
      return false;
    }
  }

  private async applyObjects(cluster: { name: string; namespace: string; uid: string }, decision: Decision, spec: Parameters<typeof desiredObjects>[0]['spec'] | undefined): Promise<void> {
    if (spec === undefined) return;
    const serviceMonitorAvailable = spec.monitoring.enabled ? await this.deps.serviceMonitorAvailable() : false;
    const objects: KubeObject[] = desiredObjects({ cluster, spec, statefulSetReplicas: decision.statefulSetReplicas, serviceMonitorAvailable });
    for (const object of objects) {
      if (!isKind(object.kind)) throw new Error(`no REST path for kind ${object.kind}`);
      const path = resourcePath(object.kind, cluster.namespace, object.metadata.name);
      if (object.kind === 'StatefulSet') await this.checkResize(path, decision.statefulSetReplicas);
      await this.deps.client.apply(path, object);
    }
  }

  /**
   * The machine changes the StatefulSet by at most one replica per pass. This checks it again at
   * the boundary, against the StatefulSet as the API server has it now rather than as a cache saw
   * it: a decision made from a stale or empty view must never remove several pods at once.
   */
  private async checkResize(path: string, replicas: number): Promise<void> {
    const current = await this.deps.client.get(path);
    const currentReplicas = (current?.spec as { replicas?: number } | undefined)?.replicas;
    if (currentReplicas !== undefined && Math.abs(currentReplicas - replicas) > 1) {
      throw new Error(`refusing to change ${path} from ${currentReplicas} to ${replicas} replicas: the operator moves one node at a time (the decision came from a stale view)`);
    }
  }

  /** Runs the action; answers true when the node asked to be retried later. */
  private async execute(involved: { namespace: string; name: string; uid: string }, action: Exclude<Action, { kind: 'CreateSecret' }>, pods: readonly PodRecord[], admin: NodeAdmin, events: EventRecord[]): Promise<boolean> {
    const labels = { namespace: involved.namespace, cluster: involved.name, action: action.kind };
    const ipOf = (pod: string) => {
      const ip = pods.find((p) => p.view.name === pod)?.view.ip;
      if (ip === undefined) throw new NodeCallError(0, 'NO_POD_IP', `pod ${pod} has no IP`);
      return ip;
    };
    try {
      switch (action.kind) {
        case 'Init':
          await admin.init(ipOf(action.pod));
          break;
        case 'Join':
          await admin.join(ipOf(action.pod), ipOf(action.seedPod));
          break;
        case 'Leave':
          await admin.leave(ipOf(action.viaPod), action.pod);
          break;
        case 'DeletePod':
          await this.deps.client.delete(resourcePath('Pod', involved.namespace, action.pod), { uid: pods.find((p) => p.view.name === action.pod)?.uid });
          break;
        case 'DeletePVC':
          await this.deps.client.delete(resourcePath('PersistentVolumeClaim', involved.namespace, action.pvc));
          break;
      }
      this.deps.metrics.nodeActions.inc({ ...labels, result: 'ok' });
      return false;
    } catch (error) {
      if (error instanceof NodeCallError && error.retryable) {
        this.deps.metrics.nodeActions.inc({ ...labels, result: 'retry' });
        this.deps.log.info({ namespace: involved.namespace, cluster: involved.name, action: action.kind, err: error.message }, 'the node asked to retry later');
        return true;
      }
      this.deps.metrics.nodeActions.inc({ ...labels, result: 'error' });
      events.push({ type: 'Warning', reason: 'ActionFailed', message: `${action.kind} failed: ${error instanceof Error ? error.message : String(error)}` });
      await this.recordEvents(involved, events.splice(0));
      throw error;
    }
  }

  private async recordEvents(involved: { namespace: string; name: string; uid: string }, events: readonly EventRecord[]): Promise<void> {
    for (const event of events) await this.deps.recorder.record(involved, event);
  }
}

function ownedBy(object: RawObject, uid: string): boolean {
  return (object.metadata?.ownerReferences ?? []).some((ref) => ref.controller === true && ref.uid === uid);
}

/**
 * The newer of the cached object and the one this process last wrote. resourceVersions are
 * opaque by contract; etcd's are integers in practice, and when they are not the cache wins.
 */
function fresher(cached: RawObject, written: RawObject | undefined): RawObject {
  if (written === undefined || written.metadata?.uid !== cached.metadata?.uid) return cached;
  const a = Number(cached.metadata?.resourceVersion);
  const b = Number(written.metadata?.resourceVersion);
  return Number.isSafeInteger(a) && Number.isSafeInteger(b) && b > a ? written : cached;
}
