/**
 * What the reconciler observed in one pass (the input of decide() in machine.ts) and what it is
 * told to do (the output). The adapter fills Observed from the API server and from the nodes'
 * admin API; nothing here does I/O.
 */
import type { SpecResult } from './spec';
import type { ClusterRef } from './names';
import type { ClusterStatus, MemberState } from './types';

export interface PodView {
  readonly name: string;
  readonly ordinal: number;
  readonly ip: string | undefined;
  /** Phase Running and every container started. */
  readonly running: boolean;
  /** The Ready condition (the node's /readyz: admitted and normal). */
  readonly ready: boolean;
  readonly terminating: boolean;
  /** The controller-revision-hash label: which StatefulSet revision the pod runs. */
  readonly revision: string | undefined;
}

export interface PvcView {
  readonly name: string;
  readonly terminating: boolean;
}

export interface StatefulSetView {
  readonly replicas: number;
  /** status.updateRevision; pods on another revision are outdated. */
  readonly updateRevision: string | undefined;
  /** The ring settings annotation the StatefulSet was created with. */
  readonly ringSettings: string | undefined;
}

export interface RingMemberView {
  readonly id: string;
  readonly state: MemberState;
  readonly up: boolean;
  readonly ownership: number;
  /** The host of the member's peer URL as the ring records it (a pod IP). */
  readonly host: string | undefined;
}

export interface RingView {
  /** The pod whose node answered. */
  readonly source: string;
  readonly version: number;
  readonly members: readonly RingMemberView[];
  /** Transfers of the pending change not done yet, and all of them (GET /v1/handoff). */
  readonly transfersPending: number;
  readonly transfersTotal: number;
}

export interface Observed {
  readonly nowMs: number;
  readonly cluster: ClusterRef & { readonly generation: number };
  readonly spec: SpecResult;
  readonly previous: ClusterStatus;
  readonly secret: 'present' | 'missing' | 'incomplete';
  readonly statefulSet: StatefulSetView | undefined;
  readonly pods: readonly PodView[];
  readonly pvcs: readonly PvcView[];
  /** The ring as a Ready node sees it; undefined when no Ready node answered. */
  readonly ring: RingView | undefined;
  /**
   * Hints waiting for delivery, per pod asked: the Ready pods, and the pod a scale-down removes
   * whether Ready or not (a leaving or left node answers /readyz 503 but still delivers hints).
   * A pod that was asked and did not answer counts as 1; a pod not asked is absent.
   */
  readonly hintBacklogs: Readonly<Record<string, number>>;
  /**
   * The state each pod that answered for its hints gives for itself (its own view of the ring).
   * A node that has not yet learned that it left still takes client writes, and may store new
   * hints, even after the ring source shows it `left`.
   */
  readonly selfStates: Readonly<Record<string, MemberState>>;
}

export type Action =
  | { readonly kind: 'CreateSecret' }
  | { readonly kind: 'Init'; readonly pod: string }
  | { readonly kind: 'Join'; readonly pod: string; readonly seedPod: string }
  | { readonly kind: 'Leave'; readonly pod: string; readonly viaPod: string }
  | { readonly kind: 'DeletePod'; readonly pod: string }
  | { readonly kind: 'DeletePVC'; readonly pvc: string };

export interface EventRecord {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

export interface Decision {
  /** Apply the owned objects (false when paused, invalid, or before the Secret exists). */
  readonly apply: boolean;
  /** The replica count to apply on the StatefulSet. */
  readonly statefulSetReplicas: number;
  /** Written (through the status subresource) before the action runs: intent first. */
  readonly status: ClusterStatus;
  readonly action: Action | undefined;
  readonly events: readonly EventRecord[];
  readonly requeueAfterMs: number;
}
