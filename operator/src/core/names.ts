/**
 * Names, labels and ports shared by the builders, the state machine and the adapters, so that a
 * pod name, a PVC name and a node id always agree. A node's id in the ring is its pod name.
 */
import { API_GROUP, API_VERSION, KIND, type OwnerReference } from './types';

export const CLIENT_PORT = 8080;
export const PEER_PORT = 9080;
export const DATA_VOLUME = 'data';
export const DATA_MOUNT_PATH = '/var/lib/dynamokv';
export const CONFIG_MOUNT_PATH = '/etc/dynamokv';
export const CONFIG_FILE = 'config.json';
export const CONFIG_HASH_ANNOTATION = 'dynamokv.io/config-hash';
export const RING_SETTINGS_ANNOTATION = 'dynamokv.io/ring';
export const CLUSTER_LABEL = 'dynamokv.io/cluster';
export const MANAGED_BY = 'dynamokv-operator';
export const SECRET_KEYS = { peerSecret: 'peer-secret', contextSecret: 'context-secret', authToken: 'auth-token' } as const;

export interface ClusterRef {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

export const names = {
  statefulSet: (cluster: string) => cluster,
  peerService: (cluster: string) => `${cluster}-peers`,
  clientService: (cluster: string) => cluster,
  configMap: (cluster: string) => `${cluster}-config`,
  secret: (cluster: string) => `${cluster}-credentials`,
  podDisruptionBudget: (cluster: string) => cluster,
  serviceMonitor: (cluster: string) => cluster,
  pod: (cluster: string, ordinal: number) => `${cluster}-${ordinal}`,
  pvc: (cluster: string, ordinal: number) => `${DATA_VOLUME}-${cluster}-${ordinal}`,
};

/** The pod's ordinal, or undefined when the name is not `<cluster>-<n>`. */
export function ordinalOf(cluster: string, pod: string): number | undefined {
  if (!pod.startsWith(`${cluster}-`)) return undefined;
  const rest = pod.slice(cluster.length + 1);
  return /^(0|[1-9][0-9]{0,5})$/.test(rest) ? Number(rest) : undefined;
}

/** Labels that select this cluster's pods; they never change (a StatefulSet selector is immutable). */
export function selectorLabels(cluster: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'dynamokv', 'app.kubernetes.io/instance': cluster };
}

/** The selector serialized for status.selector (the scale subresource and HPA read it). */
export function selectorString(cluster: string): string {
  return Object.entries(selectorLabels(cluster))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}

/** Labels on every object the operator owns; the adapters watch by the managed-by label. */
export function commonLabels(cluster: string, component: string): Record<string, string> {
  return { ...selectorLabels(cluster), 'app.kubernetes.io/component': component, 'app.kubernetes.io/managed-by': MANAGED_BY, [CLUSTER_LABEL]: cluster };
}

export function ownerReference(cluster: ClusterRef): OwnerReference {
  return { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: KIND, name: cluster.name, uid: cluster.uid, controller: true, blockOwnerDeletion: true };
}
