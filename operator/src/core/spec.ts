/**
 * Validation and defaulting of a DynamoCluster spec. The CRD schema (crd.ts) already rejects most
 * mistakes at the API server; this module checks everything again because the operator must not
 * act on a spec it has not checked itself (the CRD installed may be older than the operator, and
 * defaults only apply when the API server knows them). Every problem is named, none is fatal to
 * the operator: an invalid cluster gets phase Invalid and a Degraded condition saying why.
 */
import { NAME_CHARS_MAX, PARTITIONS_MAX, REPLICATION_FACTOR_MAX } from './crd';
import type { ClusterSpec, Json, JsonObject } from './types';

export interface SpecDefaults {
  /** DEFAULT_NODE_IMAGE of the operator. */
  readonly image: string;
}

export type SpecResult = { readonly ok: true; readonly spec: ClusterSpec } | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Keys of the node configuration the operator sets itself (identity, addresses, ring settings,
 * secrets). A user value for one of them would fight the operator, so it is refused.
 */
export const OPERATOR_OWNED_CONFIG_KEYS: readonly string[] = [
  'nodeId', 'host', 'advertiseHost', 'port', 'peerPort', 'dataDir', 'partitionCount', 'replicationFactor',
  'readQuorum', 'writeQuorum', 'seeds', 'requireAdmission', 'peerSecret', 'contextSecret', 'authToken',
];

const NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
const DURATION = /^[0-9]+(ms|s|m|h)$/;
const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
const POD_SPEC_KEYS = ['nodeSelector', 'tolerations', 'affinity', 'topologySpreadConstraints', 'priorityClassName', 'serviceAccountName', 'imagePullSecrets'];
const REPLICAS_MAX = 1000;
const TIMEOUT_SECONDS_MIN = 10;

export function validateClusterName(name: string): string | undefined {
  if (name.length > NAME_CHARS_MAX || !NAME.test(name)) return `metadata.name "${name}" must be a DNS label of at most ${NAME_CHARS_MAX} characters`;
  return undefined;
}

export function normalizeSpec(name: string, raw: Json, defaults: SpecDefaults): SpecResult {
  const problems: string[] = [];
  const nameProblem = validateClusterName(name);
  if (nameProblem !== undefined) problems.push(nameProblem);
  const spec = new Reader(isObject(raw) ? raw : {}, 'spec', problems);
  if (!isObject(raw)) problems.push('spec must be an object');

  const replicationFactor = spec.integer('replicationFactor', 3, 1, REPLICATION_FACTOR_MAX);
  const readQuorum = spec.integer('readQuorum', 2, 1, REPLICATION_FACTOR_MAX);
  const writeQuorum = spec.integer('writeQuorum', 2, 1, REPLICATION_FACTOR_MAX);
  if (readQuorum > replicationFactor) problems.push(`spec.readQuorum ${readQuorum} exceeds replicationFactor ${replicationFactor}`);
  if (writeQuorum > replicationFactor) problems.push(`spec.writeQuorum ${writeQuorum} exceeds replicationFactor ${replicationFactor}`);
  const partitions = spec.integer('partitions', 256, 1, PARTITIONS_MAX);
  if ((partitions & (partitions - 1)) !== 0) problems.push(`spec.partitions ${partitions} is not a power of two`);

  const storage = spec.child('storage');
  const config = spec.object('config');
  for (const key of OPERATOR_OWNED_CONFIG_KEYS) {
    if (key in config) problems.push(`spec.config.${key} is set by the operator and may not be given`);
  }
  const podTemplate = spec.child('podTemplate');
  const podMetadata = podTemplate.child('metadata');
  const podSpec = podTemplate.object('spec');
  for (const key of Object.keys(podSpec)) {
    if (!POD_SPEC_KEYS.includes(key)) problems.push(`spec.podTemplate.spec.${key} is not supported (supported: ${POD_SPEC_KEYS.join(', ')})`);
  }
  const scaling = spec.child('scaling');
  const monitoring = spec.child('monitoring');
  const pullPolicy = spec.optionalString('imagePullPolicy');
  if (pullPolicy !== undefined && !(PULL_POLICIES as readonly string[]).includes(pullPolicy)) problems.push(`spec.imagePullPolicy must be one of ${PULL_POLICIES.join(', ')}`);

  const result: ClusterSpec = {
    replicas: spec.integer('replicas', 3, 1, REPLICAS_MAX),
    image: spec.optionalString('image') ?? defaults.image,
    imagePullPolicy: pullPolicy as ClusterSpec['imagePullPolicy'],
    partitions,
    replicationFactor,
    readQuorum,
    writeQuorum,
    storage: {
      size: storage.matching('size', '10Gi', QUANTITY, 'a quantity such as 10Gi'),
      storageClassName: storage.optionalString('storageClassName'),
      retainOnDelete: storage.boolean('retainOnDelete', true),
    },
    resources: spec.object('resources'),
    config,
    podTemplate: { labels: podMetadata.stringMap('labels'), annotations: podMetadata.stringMap('annotations'), spec: podSpec },
    disruption: { maxUnavailable: spec.child('disruption').integer('maxUnavailable', 1, 1, REPLICAS_MAX) },
    scaling: {
      deletePVCOnScaleDown: scaling.boolean('deletePVCOnScaleDown', true),
      joinTimeoutSeconds: scaling.integer('joinTimeoutSeconds', 1800, TIMEOUT_SECONDS_MIN, Number.MAX_SAFE_INTEGER),
      leaveTimeoutSeconds: scaling.integer('leaveTimeoutSeconds', 3600, TIMEOUT_SECONDS_MIN, Number.MAX_SAFE_INTEGER),
      updateTimeoutSeconds: scaling.integer('updateTimeoutSeconds', 600, TIMEOUT_SECONDS_MIN, Number.MAX_SAFE_INTEGER),
    },
    monitoring: { enabled: monitoring.boolean('enabled', false), interval: monitoring.matching('interval', '30s', DURATION, 'a duration such as 30s') },
    paused: spec.boolean('paused', false),
  };
  return problems.length === 0 ? { ok: true, spec: result } : { ok: false, problems };
}

/** The ring settings in one string, recorded on the StatefulSet to catch a change the CRD missed. */
export function ringSettings(spec: Pick<ClusterSpec, 'partitions' | 'replicationFactor' | 'readQuorum' | 'writeQuorum'>): string {
  return `partitions=${spec.partitions},replicationFactor=${spec.replicationFactor},readQuorum=${spec.readQuorum},writeQuorum=${spec.writeQuorum}`;
}

export function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads typed fields of one object, recording a named problem (and using the default) for each bad one. */
class Reader {
  constructor(
    private readonly fields: JsonObject,
    private readonly path: string,
    private readonly problems: string[],
  ) {}

  child(key: string): Reader {
    return new Reader(this.object(key), `${this.path}.${key}`, this.problems);
  }

  object(key: string): JsonObject {
    const value = this.fields[key];
    if (value === undefined || value === null) return {};
    if (isObject(value)) return value;
    this.problems.push(`${this.path}.${key} must be an object`);
    return {};
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    const value = this.fields[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.problems.push(`${this.path}.${key} must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.fields[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value === 'boolean') return value;
    this.problems.push(`${this.path}.${key} must be true or false`);
    return fallback;
  }

  optionalString(key: string): string | undefined {
    const value = this.fields[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'string' && value.length > 0) return value;
    this.problems.push(`${this.path}.${key} must be a non-empty string`);
    return undefined;
  }

  matching(key: string, fallback: string, pattern: RegExp, what: string): string {
    const value = this.optionalString(key);
    if (value === undefined) return fallback;
    if (pattern.test(value)) return value;
    this.problems.push(`${this.path}.${key} "${value}" must be ${what}`);
    return fallback;
  }

  stringMap(key: string): Record<string, string> {
    const map = this.object(key);
    const result: Record<string, string> = {};
    for (const [name, value] of Object.entries(map)) {
      if (typeof value === 'string') result[name] = value;
      else this.problems.push(`${this.path}.${key}.${name} must be a string`);
    }
    return result;
  }
}
