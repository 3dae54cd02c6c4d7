/**
 * The desired objects of a cluster, as pure functions of the validated spec: what the operator
 * applies on every pass (server-side apply makes that idempotent). The StatefulSet is in
 * statefulSet.ts; its replica count is not taken from the spec but from the state machine, which
 * changes it one node at a time.
 */
import { canonicalJson, fnv1a64 } from './hash';
import {
  CLIENT_PORT, CONFIG_FILE, MANAGED_BY, PEER_PORT, SECRET_KEYS, commonLabels, names, ownerReference, selectorLabels, type ClusterRef,
} from './names';
import { buildStatefulSet } from './statefulSet';
import type { ClusterSpec, KubeObject } from './types';

export interface DesiredInput {
  readonly cluster: ClusterRef;
  readonly spec: ClusterSpec;
  /** Decided by the state machine; never simply spec.replicas. */
  readonly statefulSetReplicas: number;
  /** True when the monitoring.coreos.com/v1 API is served. */
  readonly serviceMonitorAvailable: boolean;
}

export interface Credentials {
  readonly peerSecret: string;
  readonly contextSecret: string;
  readonly authToken: string;
}

/** The node configuration file: the user's config with keys in a canonical order. */
export function nodeConfigFile(spec: ClusterSpec): string {
  return `${canonicalJson(spec.config)}\n`;
}

/** Changes whenever a pod would see different configuration, and then rolls the pods. */
export function configHash(spec: ClusterSpec): string {
  return fnv1a64(nodeConfigFile(spec));
}

/** Everything except the Secret, which is created once (credentialsSecret) and never applied again. */
export function desiredObjects(input: DesiredInput): KubeObject[] {
  const objects: KubeObject[] = [
    configMap(input),
    peerService(input),
    clientService(input),
    podDisruptionBudget(input),
    buildStatefulSet({ cluster: input.cluster, spec: input.spec, replicas: input.statefulSetReplicas, configHash: configHash(input.spec) }),
  ];
  if (input.spec.monitoring.enabled && input.serviceMonitorAvailable) objects.push(serviceMonitor(input));
  return objects;
}

function metadata(cluster: ClusterRef, name: string, component: string, extraLabels: Record<string, string> = {}) {
  return { name, namespace: cluster.namespace, labels: { ...commonLabels(cluster.name, component), ...extraLabels }, ownerReferences: [ownerReference(cluster)] };
}

function configMap({ cluster, spec }: DesiredInput): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: metadata(cluster, names.configMap(cluster.name), 'config'), data: { [CONFIG_FILE]: nodeConfigFile(spec) } };
}

const ports = [
  { name: 'client', port: CLIENT_PORT, targetPort: CLIENT_PORT, protocol: 'TCP' },
  { name: 'peer', port: PEER_PORT, targetPort: PEER_PORT, protocol: 'TCP' },
];

/**
 * The headless governing Service of the StatefulSet. It publishes pods that are not Ready too:
 * a node that is joining is not Ready yet, and its peers must still reach it.
 */
function peerService({ cluster }: DesiredInput): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(cluster, names.peerService(cluster.name), 'peers', { 'dynamokv.io/service': 'peers' }),
    spec: { clusterIP: 'None', publishNotReadyAddresses: true, selector: selectorLabels(cluster.name), ports },
  };
}

/** Clients connect here; only Ready nodes (admitted and normal) are endpoints. */
function clientService({ cluster }: DesiredInput): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(cluster, names.clientService(cluster.name), 'client', { 'dynamokv.io/service': 'client' }),
    spec: { type: 'ClusterIP', selector: selectorLabels(cluster.name), ports: [ports[0]] },
  };
}

function podDisruptionBudget({ cluster, spec }: DesiredInput): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: metadata(cluster, names.podDisruptionBudget(cluster.name), 'node'),
    spec: { maxUnavailable: spec.disruption.maxUnavailable, selector: { matchLabels: selectorLabels(cluster.name) } },
  };
}

function serviceMonitor({ cluster, spec }: DesiredInput): KubeObject {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: metadata(cluster, names.serviceMonitor(cluster.name), 'monitoring'),
    spec: {
      selector: { matchLabels: { ...selectorLabels(cluster.name), 'dynamokv.io/service': 'client' } },
      namespaceSelector: { matchNames: [cluster.namespace] },
      endpoints: [{ port: 'client', path: '/metrics', interval: spec.monitoring.interval }],
    },
  };
}

/**
 * The cluster's credentials. Created once when the cluster is created and never applied again:
 * running nodes read them at start, so a silent rotation would split the cluster (peers refuse
 * each other, contexts stop verifying). The values come from the adapter's random source.
 */
export function credentialsSecret(cluster: ClusterRef, credentials: Credentials): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { ...metadata(cluster, names.secret(cluster.name), 'credentials'), annotations: { 'dynamokv.io/created-by': MANAGED_BY } },
    type: 'Opaque',
    stringData: {
      [SECRET_KEYS.peerSecret]: credentials.peerSecret,
      [SECRET_KEYS.contextSecret]: credentials.contextSecret,
      [SECRET_KEYS.authToken]: credentials.authToken,
    },
  };
}
