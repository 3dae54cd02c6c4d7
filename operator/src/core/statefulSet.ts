/**
 * The StatefulSet of a cluster. Choices, and why:
 * - updateStrategy OnDelete: the operator deletes outdated pods itself, one at a time, and only
 *   when every node is Ready and no hints wait for delivery; the StatefulSet controller alone
 *   could only wait for Ready.
 * - podManagementPolicy Parallel: the operator already adds nodes one at a time; Parallel lets pods
 *   that crashed together come back together instead of in ordinal order.
 * - PVCs are kept on scale-down by the StatefulSet (whenScaled: Retain): the operator deletes a
 *   removed node's claim itself, after the node left the ring, when the spec says so.
 * - --require-admission: a new pod serves nothing and is not Ready until the operator has
 *   initialised it (ordinal 0 of a new cluster) or joined it to the ring.
 * - The node listens on the pod IP (--host) rather than 0.0.0.0, which keeps the test kubelet's
 *   pods (processes on one machine) apart; consequence: `kubectl port-forward` to a pod does not
 *   reach the node, use the client Service.
 */
import {
  CLIENT_PORT, CONFIG_FILE, CONFIG_HASH_ANNOTATION, CONFIG_MOUNT_PATH, DATA_MOUNT_PATH, DATA_VOLUME, PEER_PORT, RING_SETTINGS_ANNOTATION,
  SECRET_KEYS, commonLabels, names, ownerReference, selectorLabels, type ClusterRef,
} from './names';
import { ringSettings } from './spec';
import type { ClusterSpec, JsonObject, KubeObject } from './types';

export interface StatefulSetInput {
  readonly cluster: ClusterRef;
  readonly spec: ClusterSpec;
  readonly replicas: number;
  readonly configHash: string;
}

/** A fixed non-root uid/gid: the node image creates this user (docker/node.Dockerfile). */
export const NODE_UID = 10001;
const TERMINATION_GRACE_SECONDS = 30;

export function buildStatefulSet({ cluster, spec, replicas, configHash }: StatefulSetInput): KubeObject {
  const labels = commonLabels(cluster.name, 'node');
  const podLabels = { ...spec.podTemplate.labels, ...labels };
  const podAnnotations = { ...spec.podTemplate.annotations, [CONFIG_HASH_ANNOTATION]: configHash };
  const claimSpec: JsonObject = { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: spec.storage.size } } };
  if (spec.storage.storageClassName !== undefined) claimSpec.storageClassName = spec.storage.storageClassName;
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: {
      name: names.statefulSet(cluster.name),
      namespace: cluster.namespace,
      labels,
      annotations: { [RING_SETTINGS_ANNOTATION]: ringSettings(spec) },
      ownerReferences: [ownerReference(cluster)],
    },
    spec: {
      replicas,
      serviceName: names.peerService(cluster.name),
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'OnDelete' },
      selector: { matchLabels: selectorLabels(cluster.name) },
      persistentVolumeClaimRetentionPolicy: { whenDeleted: spec.storage.retainOnDelete ? 'Retain' : 'Delete', whenScaled: 'Retain' },
      volumeClaimTemplates: [{ metadata: { name: DATA_VOLUME, labels: selectorLabels(cluster.name) }, spec: claimSpec }],
      template: { metadata: { labels: podLabels, annotations: podAnnotations }, spec: podSpec(cluster, spec) },
    },
  };
}

function podSpec(cluster: ClusterRef, spec: ClusterSpec): JsonObject {
  const user = spec.podTemplate.spec;
  const pod: JsonObject = {
    terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
    enableServiceLinks: false,
    securityContext: { runAsNonRoot: true, runAsUser: NODE_UID, runAsGroup: NODE_UID, fsGroup: NODE_UID, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [nodeContainer(cluster, spec)],
    volumes: [
      { name: 'config', configMap: { name: names.configMap(cluster.name) } },
      { name: 'tmp', emptyDir: {} },
    ],
    affinity: user.affinity ?? defaultAffinity(cluster.name),
  };
  for (const key of ['nodeSelector', 'tolerations', 'topologySpreadConstraints', 'priorityClassName', 'serviceAccountName', 'imagePullSecrets']) {
    const value = user[key];
    if (value !== undefined) pod[key] = value;
  }
  return pod;
}

/** Spread nodes over machines when the scheduler can: two replicas of a key on one host share its fate. */
function defaultAffinity(cluster: string): JsonObject {
  return {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selectorLabels(cluster) } } },
      ],
    },
  };
}

function nodeContainer(cluster: ClusterRef, spec: ClusterSpec): JsonObject {
  const secretEnv = (name: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: names.secret(cluster.name), key } } });
  const container: JsonObject = {
    name: 'node',
    image: spec.image,
    args: [
      '--node-id=$(POD_NAME)',
      '--host=$(POD_IP)',
      '--advertise-host=$(POD_IP)',
      `--port=${CLIENT_PORT}`,
      `--peer-port=${PEER_PORT}`,
      `--data-dir=${DATA_MOUNT_PATH}/node`,
      `--partitions=${spec.partitions}`,
      `--replication=${spec.replicationFactor}`,
      `--r=${spec.readQuorum}`,
      `--w=${spec.writeQuorum}`,
      '--require-admission',
      `--config=${CONFIG_MOUNT_PATH}/${CONFIG_FILE}`,
    ],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      secretEnv('DYNAMOKV_PEER_SECRET', SECRET_KEYS.peerSecret),
      secretEnv('DYNAMOKV_CONTEXT_SECRET', SECRET_KEYS.contextSecret),
      secretEnv('DYNAMOKV_AUTH_TOKEN', SECRET_KEYS.authToken),
    ],
    ports: [
      { name: 'client', containerPort: CLIENT_PORT, protocol: 'TCP' },
      { name: 'peer', containerPort: PEER_PORT, protocol: 'TCP' },
    ],
    // Ready means admitted to the ring and in state normal: a joining node streams its
    // partitions first, so the client Service never routes to a node that lacks its data.
    readinessProbe: { httpGet: { path: '/readyz', port: CLIENT_PORT }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: '/healthz', port: CLIENT_PORT }, initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 6 },
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
    volumeMounts: [
      { name: DATA_VOLUME, mountPath: DATA_MOUNT_PATH },
      { name: 'config', mountPath: CONFIG_MOUNT_PATH, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ],
    resources: spec.resources,
  };
  if (spec.imagePullPolicy !== undefined) container.imagePullPolicy = spec.imagePullPolicy;
  return container;
}
