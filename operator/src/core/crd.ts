/**
 * The DynamoCluster CustomResourceDefinition: the one schema source. crds/ and the Helm chart's
 * crds/ directory hold YAML generated from this object (operator/src/generateCrd.ts); a unit test
 * fails when either file differs from what this module generates.
 *
 * Validation lives in two places on purpose. The API server rejects what is wrong in itself
 * (types, ranges, R or W above N, ring settings changed after creation) so a user sees the error
 * at `kubectl apply`. spec.ts checks the same rules again, because a CRD can be older than the
 * operator and because the operator must never act on a spec it did not check.
 *
 * One rule is deliberately not an API error: replicas below N on an existing cluster. `kubectl
 * scale` and an HPA write through the scale subresource, and a refusal there is an opaque error
 * in someone else's controller. The operator instead accepts the value, leaves the StatefulSet
 * alone and says why in the ScaleDownBlocked condition and an event. A new cluster below N is
 * rejected outright: it could never hold N replicas of anything.
 */
import { API_GROUP, API_VERSION, KIND, PLURAL, type JsonObject } from './types';

export const CRD_NAME = `${PLURAL}.${API_GROUP}`;
export const SHORT_NAME = 'dkv';
export const NAME_CHARS_MAX = 40;
export const REPLICATION_FACTOR_MAX = 9;
export const PARTITIONS_MAX = 65536;

/** Partition counts the node accepts: powers of two up to 65536 (node/src/core/partition.ts). */
const PARTITION_COUNTS = Array.from({ length: 17 }, (_, i) => 2 ** i);

const immutable = (field: string) => ({ 'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: `${field} is immutable after creation` }] });
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
const quantityMap = { type: 'object', additionalProperties: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] } };
const freeObject = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
const freeObjectList = { type: 'array', items: freeObject };

const specSchema = {
  type: 'object',
  description: 'The desired cluster. partitions, replicationFactor, readQuorum, writeQuorum and storage are fixed at creation.',
  properties: {
    replicas: { type: 'integer', minimum: 1, maximum: 1000, default: 3, description: 'Number of nodes (the scale subresource). Below replicationFactor the operator refuses to shrink (ScaleDownBlocked).' },
    image: { type: 'string', minLength: 1, description: "Node image; the operator's DEFAULT_NODE_IMAGE when unset." },
    imagePullPolicy: { type: 'string', enum: ['Always', 'IfNotPresent', 'Never'] },
    partitions: { type: 'integer', enum: PARTITION_COUNTS, default: 256, description: 'Q, the fixed number of partitions (a power of two).', ...immutable('partitions') },
    replicationFactor: { type: 'integer', minimum: 1, maximum: REPLICATION_FACTOR_MAX, default: 3, description: 'N, replicas of every key.', ...immutable('replicationFactor') },
    readQuorum: { type: 'integer', minimum: 1, maximum: REPLICATION_FACTOR_MAX, default: 2, description: 'R, default read quorum (<= N).', ...immutable('readQuorum') },
    writeQuorum: { type: 'integer', minimum: 1, maximum: REPLICATION_FACTOR_MAX, default: 2, description: 'W, default write quorum (<= N).', ...immutable('writeQuorum') },
    storage: {
      type: 'object',
      default: {},
      properties: {
        size: { type: 'string', default: '10Gi', pattern: '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$', ...immutable('storage.size') },
        storageClassName: { type: 'string', minLength: 1, ...immutable('storage.storageClassName') },
        retainOnDelete: { type: 'boolean', default: true, description: 'Keep the PersistentVolumeClaims when the DynamoCluster is deleted.' },
      },
      'x-kubernetes-validations': [{ rule: 'has(self.storageClassName) == has(oldSelf.storageClassName)', message: 'storage.storageClassName is immutable after creation' }],
    },
    resources: { type: 'object', properties: { limits: quantityMap, requests: quantityMap } },
    config: { ...freeObject, description: "Node configuration (the node's --config JSON file), e.g. {gossipIntervalMs: 500}. Changing it rolls the pods one at a time." },
    podTemplate: {
      type: 'object',
      properties: {
        metadata: { type: 'object', properties: { labels: stringMap, annotations: stringMap } },
        spec: {
          type: 'object',
          properties: {
            nodeSelector: stringMap,
            tolerations: freeObjectList,
            affinity: freeObject,
            topologySpreadConstraints: freeObjectList,
            priorityClassName: { type: 'string' },
            serviceAccountName: { type: 'string' },
            imagePullSecrets: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
          },
        },
      },
    },
    disruption: { type: 'object', default: {}, properties: { maxUnavailable: { type: 'integer', minimum: 1, default: 1 } } },
    scaling: {
      type: 'object',
      default: {},
      properties: {
        deletePVCOnScaleDown: { type: 'boolean', default: true, description: "Delete a removed node's PersistentVolumeClaim once its data has moved away." },
        joinTimeoutSeconds: { type: 'integer', minimum: 10, default: 1800, description: 'After this long a join is reported as Degraded (it keeps running).' },
        leaveTimeoutSeconds: { type: 'integer', minimum: 10, default: 3600, description: 'After this long a leave is reported as Degraded; the StatefulSet never shrinks before the node left.' },
        updateTimeoutSeconds: { type: 'integer', minimum: 10, default: 600, description: 'After this long a restarted pod that is not Ready is reported as Degraded.' },
      },
    },
    monitoring: {
      type: 'object',
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false, description: 'Create a ServiceMonitor when the monitoring.coreos.com CRD exists.' },
        interval: { type: 'string', default: '30s', pattern: '^[0-9]+(ms|s|m|h)$' },
      },
    },
    paused: { type: 'boolean', default: false, description: 'Stop reconciling this cluster (nothing is created, changed or deleted).' },
  },
  'x-kubernetes-validations': [
    { rule: 'self.readQuorum <= self.replicationFactor', message: 'readQuorum must not exceed replicationFactor' },
    { rule: 'self.writeQuorum <= self.replicationFactor', message: 'writeQuorum must not exceed replicationFactor' },
    { rule: 'oldSelf.hasValue() || self.replicas >= self.replicationFactor', optionalOldSelf: true, message: 'a new cluster needs replicas >= replicationFactor' },
  ],
};

const conditionSchema = {
  type: 'object',
  required: ['type', 'status'],
  properties: {
    type: { type: 'string' },
    status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
    reason: { type: 'string' },
    message: { type: 'string' },
    lastTransitionTime: { type: 'string', format: 'date-time' },
    observedGeneration: { type: 'integer' },
  },
};

const statusSchema = {
  type: 'object',
  properties: {
    observedGeneration: { type: 'integer' },
    replicas: { type: 'integer', description: 'Pods of the StatefulSet (the scale subresource reads it).' },
    readyReplicas: { type: 'integer' },
    selector: { type: 'string', description: 'Label selector of the pods, serialized, for the scale subresource and HPA.' },
    phase: { type: 'string', enum: ['Creating', 'Running', 'ScalingUp', 'ScalingDown', 'Updating', 'Degraded', 'Paused', 'Invalid'] },
    conditions: { type: 'array', items: conditionSchema, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] },
    members: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          pod: { type: 'string' },
          nodeId: { type: 'string' },
          state: { type: 'string', enum: ['joining', 'normal', 'leaving', 'left'] },
          up: { type: 'boolean' },
          ownership: { type: 'number' },
        },
      },
    },
    operation: {
      type: 'object',
      nullable: true,
      description: 'The one topology change in flight, recorded before the operator acts.',
      properties: {
        type: { type: 'string', enum: ['ScaleUp', 'ScaleDown', 'RollingUpdate'] },
        pod: { type: 'string' },
        ordinal: { type: 'integer' },
        startedAt: { type: 'string', format: 'date-time' },
        step: { type: 'string' },
        message: { type: 'string' },
      },
    },
    ringVersion: { type: 'integer', nullable: true },
    configHash: { type: 'string' },
    initialized: { type: 'boolean' },
  },
};

/** The CustomResourceDefinition object, ready to apply or to print as YAML. */
export function customResourceDefinition(): JsonObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME, labels: { 'app.kubernetes.io/name': 'dynamokv-operator', 'app.kubernetes.io/part-of': 'dynamokv' } },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: 'dynamocluster', shortNames: [SHORT_NAME], categories: ['dynamokv'] },
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {}, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' } },
          additionalPrinterColumns: [
            { name: 'Desired', type: 'integer', jsonPath: '.spec.replicas' },
            { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'Operation', type: 'string', jsonPath: '.status.operation.type' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'A Dynamo-style key-value store cluster run by the dynamokv operator.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: specSchema,
                status: statusSchema,
              },
              'x-kubernetes-validations': [
                {
                  rule: `self.metadata.name.size() <= ${NAME_CHARS_MAX} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')`,
                  message: `the name must be a DNS label of at most ${NAME_CHARS_MAX} characters (it prefixes pod, service and volume names)`,
                },
              ],
            },
          },
        },
      ],
    },
  } as JsonObject;
}
