/**
 * Turning what the API server and the nodes say into the core's Observed views: pods, claims,
 * the StatefulSet, the Secret, the ring (from the first Ready node that answers) and the hint
 * backlogs. Reading only; reconciler.ts decides and acts.
 */
import type { Logger } from 'pino';
import { RING_SETTINGS_ANNOTATION, SECRET_KEYS, names, ordinalOf, selectorLabels } from '../core/names';
import type { PodView, PvcView, RingView, StatefulSetView } from '../core/observed';
import type { MemberState } from '../core/types';
import type { RawObject, KubeClient } from '../kube/client';
import { resourcePath, withQuery } from '../kube/paths';
import type { Credentials } from '../core/resources';
import type { NodeAdmin } from './nodeAdmin';

/** Ready nodes asked for the ring, lowest ordinal first, before giving up for this pass. */
const RING_SOURCES_MAX = 3;

export interface PodRecord {
  readonly view: PodView;
  readonly uid: string | undefined;
}

export function podRecords(cluster: string, pods: readonly RawObject[]): PodRecord[] {
  const records: PodRecord[] = [];
  for (const pod of pods) {
    const name = pod.metadata?.name ?? '';
    const ordinal = ordinalOf(cluster, name);
    if (ordinal === undefined) continue;
    const status = (pod.status ?? {}) as { phase?: string; podIP?: string; conditions?: { type?: string; status?: string }[]; containerStatuses?: { state?: { running?: object } }[] };
    const containers = status.containerStatuses ?? [];
    const running = status.phase === 'Running' && containers.length > 0 && containers.every((c) => c.state?.running !== undefined);
    const ready = (status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
    records.push({
      uid: pod.metadata?.uid,
      view: {
        name,
        ordinal,
        ip: status.podIP === '' ? undefined : status.podIP,
        running,
        ready,
        terminating: pod.metadata?.deletionTimestamp !== undefined,
        revision: pod.metadata?.labels?.['controller-revision-hash'],
      },
    });
  }
  return records.sort((a, b) => a.view.ordinal - b.view.ordinal);
}

export function statefulSetView(sts: RawObject | undefined): StatefulSetView | undefined {
  if (sts === undefined) return undefined;
  const spec = (sts.spec ?? {}) as { replicas?: number };
  const status = (sts.status ?? {}) as { updateRevision?: string };
  return { replicas: spec.replicas ?? 0, updateRevision: status.updateRevision, ringSettings: sts.metadata?.annotations?.[RING_SETTINGS_ANNOTATION] };
}

export async function listClaims(client: KubeClient, namespace: string, cluster: string): Promise<PvcView[]> {
  const selector = Object.entries(selectorLabels(cluster)).map(([k, v]) => `${k}=${v}`).join(',');
  const list = await client.request('GET', withQuery(resourcePath('PersistentVolumeClaim', namespace), { labelSelector: selector }));
  const items = Array.isArray(list.items) ? (list.items as RawObject[]) : [];
  return items
    .filter((claim) => (claim.metadata?.name ?? '').startsWith(`data-${cluster}-`))
    .map((claim) => ({ name: claim.metadata?.name ?? '', terminating: claim.metadata?.deletionTimestamp !== undefined }));
}

export interface SecretState {
  readonly state: 'present' | 'missing' | 'incomplete';
  readonly credentials: Credentials | undefined;
}

export async function readSecret(client: KubeClient, namespace: string, cluster: string): Promise<SecretState> {
  const secret = await client.get(resourcePath('Secret', namespace, names.secret(cluster)));
  if (secret === undefined) return { state: 'missing', credentials: undefined };
  const data = (secret.data ?? {}) as Record<string, string | undefined>;
  const value = (key: string) => {
    const encoded = data[key];
    return encoded === undefined ? '' : Buffer.from(encoded, 'base64').toString('utf8');
  };
  const credentials = { peerSecret: value(SECRET_KEYS.peerSecret), contextSecret: value(SECRET_KEYS.contextSecret), authToken: value(SECRET_KEYS.authToken) };
  const complete = credentials.peerSecret !== '' && credentials.contextSecret.length >= 16 && credentials.authToken !== '';
  return { state: complete ? 'present' : 'incomplete', credentials: complete ? credentials : undefined };
}

/** The ring from the first Ready node that answers, with the progress of a pending change. */
export async function readRing(admin: NodeAdmin, pods: readonly PodView[], log: Logger): Promise<RingView | undefined> {
  const sources = pods.filter((p) => p.ready && !p.terminating && p.ip !== undefined).slice(0, RING_SOURCES_MAX);
  for (const pod of sources) {
    const ip = pod.ip as string;
    try {
      const ring = await admin.ring(ip);
      const handoff = await admin.handoff(ip).catch(() => ({ pending: 0, total: 0 }));
      return { source: pod.name, version: ring.version, members: ring.members, transfersPending: handoff.pending, transfersTotal: handoff.total };
    } catch (error) {
      log.debug({ err: error, pod: pod.name }, 'ring not available from this node');
    }
  }
  return undefined;
}

export interface HintsObserved {
  readonly backlogs: Record<string, number>;
  readonly selfStates: Record<string, MemberState>;
}

/**
 * Hint backlogs of the Ready nodes, and of `alsoAsk` (the pod a scale-down removes) whether it is
 * Ready or not: a leaving or left node answers /readyz 503, yet it still holds and delivers hints,
 * and it must not be removed before they are delivered. A node that does not answer counts as one
 * hint waiting: no step may go on when it cannot tell that hints were delivered. A pod without an
 * IP is not asked and is absent from the answer.
 */
export async function readHints(admin: NodeAdmin, pods: readonly PodView[], alsoAsk?: string): Promise<HintsObserved> {
  const backlogs: Record<string, number> = {};
  const selfStates: Record<string, MemberState> = {};
  await Promise.all(
    pods
      .filter((p) => p.ip !== undefined && ((p.ready && !p.terminating) || p.name === alsoAsk))
      .map(async (pod) => {
        const answer = await admin.hints(pod.ip as string).catch(() => undefined);
        backlogs[pod.name] = answer?.backlog ?? 1;
        if (answer?.selfState !== undefined) selfStates[pod.name] = answer.selfState;
      }),
  );
  return { backlogs, selfStates };
}
