/**
 * The shapes the operator's pure core works with: the DynamoCluster resource (as validated and
 * defaulted by spec.ts), its status, and the small subset of Kubernetes objects the core builds.
 * The core never imports @kubernetes/client-node: its objects are plain JSON, which is exactly
 * what server-side apply sends.
 */

export const API_GROUP = 'dynamokv.io';
export const API_VERSION = 'v1alpha1';
export const KIND = 'DynamoCluster';
export const PLURAL = 'dynamoclusters';
export const FIELD_MANAGER = 'dynamokv-operator';

/** A JSON value as it arrives from the API server: nothing is trusted until spec.ts checked it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly generation: number;
  readonly resourceVersion?: string;
  readonly deletionTimestamp?: string;
}

/** The spec after validation and defaulting: every field present, every value in range. */
export interface ClusterSpec {
  readonly replicas: number;
  readonly image: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never' | undefined;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly readQuorum: number;
  readonly writeQuorum: number;
  readonly storage: { readonly size: string; readonly storageClassName: string | undefined; readonly retainOnDelete: boolean };
  /** Passed through to the container as is (checked to be an object). */
  readonly resources: JsonObject;
  /** Node configuration file content (the node's --config JSON), minus the keys the operator owns. */
  readonly config: JsonObject;
  readonly podTemplate: { readonly labels: Record<string, string>; readonly annotations: Record<string, string>; readonly spec: JsonObject };
  readonly disruption: { readonly maxUnavailable: number };
  readonly scaling: { readonly deletePVCOnScaleDown: boolean; readonly joinTimeoutSeconds: number; readonly leaveTimeoutSeconds: number; readonly updateTimeoutSeconds: number };
  readonly monitoring: { readonly enabled: boolean; readonly interval: string };
  readonly paused: boolean;
}

export type ConditionType = 'Ready' | 'Progressing' | 'Degraded' | 'ScalingUp' | 'ScalingDown' | 'Rebalancing' | 'ScaleDownBlocked';
export const CONDITION_TYPES: readonly ConditionType[] = ['Ready', 'Progressing', 'Degraded', 'ScalingUp', 'ScalingDown', 'Rebalancing', 'ScaleDownBlocked'];

export interface Condition {
  readonly type: ConditionType;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration: number;
}

export type Phase = 'Creating' | 'Running' | 'ScalingUp' | 'ScalingDown' | 'Updating' | 'Degraded' | 'Paused' | 'Invalid';

export type OperationType = 'ScaleUp' | 'ScaleDown' | 'RollingUpdate';
export const OPERATION_TYPES: readonly OperationType[] = ['ScaleUp', 'ScaleDown', 'RollingUpdate'];

/**
 * The one topology change in flight. It is written to status before the operator acts on it, so
 * an operator that restarts (or a standby that takes over) continues the same change.
 */
export interface Operation {
  readonly type: OperationType;
  readonly pod: string;
  readonly ordinal: number;
  readonly startedAt: string;
  /** The step the operation is at (a stable word such as JoinSent); an event marks each change. */
  readonly step: string;
  /** What the operator is doing or waiting for right now, for humans. */
  readonly message: string;
}

export interface MemberStatus {
  readonly pod: string;
  readonly nodeId: string;
  readonly state: MemberState;
  readonly up: boolean;
  readonly ownership: number;
}

export type MemberState = 'joining' | 'normal' | 'leaving' | 'left';

export interface ClusterStatus {
  readonly observedGeneration: number;
  readonly replicas: number;
  readonly readyReplicas: number;
  readonly selector: string;
  readonly phase: Phase;
  readonly conditions: readonly Condition[];
  readonly members: readonly MemberStatus[];
  readonly operation: Operation | null;
  readonly ringVersion: number | null;
  readonly configHash: string;
  /** True once ordinal 0 of this cluster was initialised: init is never sent twice. */
  readonly initialized: boolean;
}

/** A DynamoCluster as read from the API: metadata checked, spec and status still raw. */
export interface ClusterResource {
  readonly metadata: ObjectMeta;
  readonly spec: Json;
  readonly status: Json;
}

/** An object the operator applies with server-side apply. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
    readonly ownerReferences?: readonly OwnerReference[];
  };
  readonly [field: string]: unknown;
}

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller: boolean;
  readonly blockOwnerDeletion: boolean;
}
