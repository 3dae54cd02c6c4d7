/**
 * Reading the previous status back (it is input to the next decision: the recorded operation,
 * condition transition times, whether ordinal 0 was initialised) and setting conditions the way
 * metav1.Condition expects: lastTransitionTime changes only when the status value changes.
 */
import { isObject } from './spec';
import {
  CONDITION_TYPES, OPERATION_TYPES, type ClusterStatus, type Condition, type ConditionType, type Json, type MemberState, type MemberStatus, type Operation,
  type Phase,
} from './types';

const PHASES: readonly Phase[] = ['Creating', 'Running', 'ScalingUp', 'ScalingDown', 'Updating', 'Degraded', 'Paused', 'Invalid'];
const MEMBER_STATES: readonly MemberState[] = ['joining', 'normal', 'leaving', 'left'];
const MESSAGE_CHARS_MAX = 1024;

/** Kubernetes timestamps: RFC 3339 in UTC with seconds precision. */
export function timestamp(nowMs: number): string {
  return new Date(Math.floor(nowMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export function emptyStatus(selector: string): ClusterStatus {
  return {
    observedGeneration: 0, replicas: 0, readyReplicas: 0, selector, phase: 'Creating', conditions: [], members: [], operation: null,
    ringVersion: null, configHash: '', initialized: false,
  };
}

/**
 * The status as the operator last wrote it. Anything malformed is dropped field by field, never
 * trusted: a status edited by hand must not make the operator act on a made-up operation.
 */
export function parseStatus(raw: Json, selector: string): ClusterStatus {
  const base = emptyStatus(selector);
  if (!isObject(raw)) return base;
  const integer = (value: Json | undefined, fallback: number) => (typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : fallback);
  const phase = PHASES.find((p) => p === raw.phase) ?? base.phase;
  return {
    observedGeneration: integer(raw.observedGeneration, 0),
    replicas: integer(raw.replicas, 0),
    readyReplicas: integer(raw.readyReplicas, 0),
    selector,
    phase,
    conditions: Array.isArray(raw.conditions) ? raw.conditions.flatMap(parseCondition) : [],
    members: Array.isArray(raw.members) ? raw.members.flatMap(parseMember) : [],
    operation: parseOperation(raw.operation),
    ringVersion: typeof raw.ringVersion === 'number' ? raw.ringVersion : null,
    configHash: typeof raw.configHash === 'string' ? raw.configHash : '',
    initialized: raw.initialized === true,
  };
}

function parseCondition(raw: Json): Condition[] {
  if (!isObject(raw)) return [];
  const type = CONDITION_TYPES.find((t) => t === raw.type);
  const status = raw.status === 'True' || raw.status === 'False' || raw.status === 'Unknown' ? raw.status : undefined;
  if (type === undefined || status === undefined) return [];
  return [{
    type,
    status,
    reason: typeof raw.reason === 'string' ? raw.reason : '',
    message: typeof raw.message === 'string' ? raw.message : '',
    lastTransitionTime: typeof raw.lastTransitionTime === 'string' ? raw.lastTransitionTime : '',
    observedGeneration: typeof raw.observedGeneration === 'number' ? raw.observedGeneration : 0,
  }];
}

function parseMember(raw: Json): MemberStatus[] {
  if (!isObject(raw) || typeof raw.pod !== 'string' || typeof raw.nodeId !== 'string') return [];
  const state = MEMBER_STATES.find((s) => s === raw.state);
  if (state === undefined) return [];
  return [{ pod: raw.pod, nodeId: raw.nodeId, state, up: raw.up === true, ownership: typeof raw.ownership === 'number' ? raw.ownership : 0 }];
}

export function parseOperation(raw: Json | undefined): Operation | null {
  if (!isObject(raw)) return null;
  const type = OPERATION_TYPES.find((t) => t === raw.type);
  const { pod, ordinal, startedAt } = raw;
  if (type === undefined || typeof pod !== 'string' || typeof ordinal !== 'number' || !Number.isInteger(ordinal) || ordinal < 0 || typeof startedAt !== 'string') return null;
  return { type, pod, ordinal, startedAt, step: typeof raw.step === 'string' ? raw.step : '', message: typeof raw.message === 'string' ? raw.message : '' };
}

export interface ConditionValue {
  readonly status: boolean;
  readonly reason: string;
  readonly message: string;
}

/** Conditions in the fixed order of CONDITION_TYPES, keeping transition times that did not change. */
export function mergeConditions(
  previous: readonly Condition[],
  values: Readonly<Record<ConditionType, ConditionValue>>,
  nowMs: number,
  generation: number,
): Condition[] {
  return CONDITION_TYPES.map((type) => {
    const value = values[type];
    const status = value.status ? 'True' : 'False';
    const before = previous.find((c) => c.type === type);
    const lastTransitionTime = before !== undefined && before.status === status && before.lastTransitionTime !== '' ? before.lastTransitionTime : timestamp(nowMs);
    return { type, status, reason: value.reason, message: value.message.slice(0, MESSAGE_CHARS_MAX), lastTransitionTime, observedGeneration: generation };
  });
}

export function conditionIsTrue(conditions: readonly Condition[], type: ConditionType): boolean {
  return conditions.some((c) => c.type === type && c.status === 'True');
}
