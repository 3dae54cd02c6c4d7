/**
 * The operator's decision as one pure function: decide(observed) -> what to apply, the status to
 * write, at most one action, the events to record and when to look again. Reconcile reads like a
 * checklist (as CloudNativePG's and cass-operator's do): the first step that is not done ends the
 * pass and says why.
 *
 *   1. the spec is valid, the cluster is not paused, ring settings did not change
 *   2. the credentials Secret exists (created once, before anything else)
 *   3. an operation recorded in status is carried on (operations.ts)
 *   4. otherwise one new operation may start, in this order: the first node of a new cluster,
 *      removing a node (never below N), adding a node, restarting an outdated pod; each only
 *      when every node is Ready and normal and nothing is being rebalanced.
 */
import { names, selectorString } from './names';
import type { Decision, EventRecord, Observed } from './observed';
import { View, rollingUpdateStep, scaleDownStep, scaleUpStep, type StepResult } from './operations';
import { configHash } from './resources';
import { ringSettings } from './spec';
import { mergeConditions, timestamp, type ConditionValue } from './status';
import type { ClusterStatus, ConditionType, MemberStatus, Operation, OperationType, Phase } from './types';

export const REQUEUE_OPERATION_MS = 2_000;
export const REQUEUE_UNHEALTHY_MS = 5_000;
export const REQUEUE_STEADY_MS = 30_000;
/** After an operation finished, the next one (if any) should not wait for a slow poll. */
export const REQUEUE_AFTER_DONE_MS = 200;

interface Outcome {
  readonly statefulSetReplicas: number;
  readonly operation: Operation | null;
  readonly result: StepResult | undefined;
  /** Why a scale-down is refused (ScaleDownBlocked). */
  readonly blocked?: string;
  /** Why no operation starts although one is due. */
  readonly waiting?: string;
  readonly degraded?: { readonly reason: string; readonly message: string };
  readonly events: EventRecord[];
}

export function decide(o: Observed): Decision {
  const selector = selectorString(o.cluster.name);
  if (!o.spec.ok) return halted(o, 'Invalid', 'InvalidSpec', o.spec.problems.join('; '));
  const spec = o.spec.spec;
  if (spec.paused) return halted(o, 'Paused', 'Paused', 'spec.paused is true: the operator changes nothing');
  const recorded = o.statefulSet?.ringSettings;
  if (recorded !== undefined && recorded !== ringSettings(spec)) {
    return halted(o, 'Invalid', 'RingSettingsChanged', `the ring settings are fixed at creation: the StatefulSet runs ${recorded}, the spec asks for ${ringSettings(spec)}`);
  }
  if (o.secret === 'missing' && o.statefulSet === undefined) {
    return {
      apply: false, statefulSetReplicas: 0, action: { kind: 'CreateSecret' }, requeueAfterMs: 0,
      status: { ...o.previous, selector, observedGeneration: o.cluster.generation, phase: 'Creating' },
      events: [{ type: 'Normal', reason: 'CredentialsCreated', message: `created Secret ${names.secret(o.cluster.name)} with generated credentials` }],
    };
  }
  const view = new View(o, spec);
  const outcome = o.secret === 'present' ? plan(view) : secretProblem(view);
  return finish(view, outcome);
}

/** Nothing is applied or changed; the status says why. */
function halted(o: Observed, phase: Phase, reason: string, message: string): Decision {
  const previous = o.previous;
  const flagged = (type: ConditionType) => (type === 'Degraded' ? { status: phase === 'Invalid', reason, message } : { status: false, reason, message });
  const values = Object.fromEntries(
    (['Ready', 'Progressing', 'Degraded', 'ScalingUp', 'ScalingDown', 'Rebalancing', 'ScaleDownBlocked'] as const).map((t) => [t, flagged(t)]),
  ) as Record<ConditionType, ConditionValue>;
  const events: EventRecord[] = previous.phase === phase && previous.conditions.some((c) => c.reason === reason) ? [] : [{ type: phase === 'Invalid' ? 'Warning' : 'Normal', reason, message }];
  return {
    apply: false,
    statefulSetReplicas: o.statefulSet?.replicas ?? 0,
    action: undefined,
    events,
    requeueAfterMs: REQUEUE_STEADY_MS,
    status: { ...previous, selector: selectorString(o.cluster.name), observedGeneration: o.cluster.generation, phase, conditions: mergeConditions(previous.conditions, values, o.nowMs, o.cluster.generation) },
  };
}

function secretProblem(view: View): Outcome {
  const what = view.o.secret === 'missing' ? 'is missing' : 'lacks a key';
  const message = `Secret ${names.secret(view.o.cluster.name)} ${what}; it is never re-created with new values (running nodes hold the old ones): restore it`;
  return { statefulSetReplicas: view.stsReplicas, operation: view.o.previous.operation, result: undefined, waiting: message, degraded: { reason: 'CredentialsMissing', message }, events: [] };
}

function plan(view: View): Outcome {
  const o = view.o;
  const current = o.previous.operation;
  if (current !== null) return carryOn(view, current, []);
  const desired = view.spec.replicas;
  const n = view.spec.replicationFactor;
  const replicas = view.stsReplicas;
  if (o.statefulSet === undefined && o.previous.initialized) {
    // Someone deleted the StatefulSet of a running cluster. Its pods come back with their claims
    // and their persisted admission, so it is re-created at the size it had, with no operation.
    return idle(Math.max(1, o.previous.replicas), undefined, { message: 'the StatefulSet was missing and is re-created', degraded: true });
  }
  if (replicas === 0) return begin(view, 'ScaleUp', 0);
  const blocked = desired < replicas && desired < n ? `spec.replicas ${desired} is below replicationFactor ${n}: the cluster stays at ${replicas} nodes` : undefined;
  const unhealthy = healthProblem(view);
  if (desired < replicas && blocked === undefined) return unhealthy === undefined ? begin(view, 'ScaleDown', replicas - 1) : idle(replicas, blocked, unhealthy);
  if (desired > replicas) return unhealthy === undefined ? begin(view, 'ScaleUp', replicas) : idle(replicas, blocked, unhealthy);
  const outdated = outdatedPods(view);
  if (outdated.length > 0) {
    const backlog = view.hintBacklog();
    const waiting = unhealthy ?? (backlog > 0 ? { message: `waiting for ${backlog} hints to be delivered before the next restart`, degraded: false } : undefined);
    const target = outdated[0];
    if (waiting === undefined && target !== undefined) return begin(view, 'RollingUpdate', target.ordinal);
    return idle(replicas, blocked, waiting);
  }
  return idle(replicas, blocked, unhealthy);
}

function idle(statefulSetReplicas: number, blocked: string | undefined, health: Health | undefined): Outcome {
  const degraded = health?.degraded === true ? { reason: 'NodesNotReady', message: health.message } : undefined;
  return { statefulSetReplicas, operation: null, result: undefined, blocked, waiting: health?.message, degraded, events: [] };
}

function begin(view: View, type: OperationType, ordinal: number): Outcome {
  const pod = names.pod(view.o.cluster.name, ordinal);
  const operation: Operation = { type, pod, ordinal, startedAt: timestamp(view.o.nowMs), step: '', message: '' };
  const verb = type === 'ScaleUp' ? 'adding' : type === 'ScaleDown' ? 'removing' : 'restarting';
  const event: EventRecord = { type: 'Normal', reason: `${type}Started`, message: `${verb} ${pod} (spec.replicas ${view.spec.replicas}, StatefulSet replicas ${view.stsReplicas})` };
  return carryOn(view, operation, [event]);
}

function carryOn(view: View, operation: Operation, events: EventRecord[]): Outcome {
  const step = operation.type === 'ScaleUp' ? scaleUpStep : operation.type === 'ScaleDown' ? scaleDownStep : rollingUpdateStep;
  const result = step(view, operation);
  const replicas = result.statefulSetReplicas;
  if (result.step === undefined) {
    const done = result.done ?? { reason: `${operation.type}Done`, message: `${operation.pod} done` };
    return { statefulSetReplicas: replicas, operation: null, result, events: [...events, { type: 'Normal', ...done }] };
  }
  const next: Operation = { ...operation, step: result.step.name, message: result.step.message };
  if (result.step.name !== operation.step) events.push({ type: 'Normal', reason: result.step.name, message: result.step.message });
  const othersDown = otherPodsDown(view, operation);
  const degraded = result.problem ?? (othersDown === undefined ? undefined : { reason: 'NodesNotReady', message: othersDown });
  return { statefulSetReplicas: replicas, operation: next, result, degraded, events };
}

interface Health {
  readonly message: string;
  /** False when the cluster is only busy (rebalancing, hints), not broken. */
  readonly degraded: boolean;
}

/** Why a new operation may not start now, or undefined when every node is Ready and normal. */
function healthProblem(view: View): Health | undefined {
  const o = view.o;
  for (let ordinal = 0; ordinal < view.stsReplicas; ordinal++) {
    const name = names.pod(o.cluster.name, ordinal);
    const pod = view.pod(name);
    if (pod === undefined || pod.terminating || !pod.ready) return { message: `${name} is not Ready`, degraded: true };
    if (o.ring === undefined) return { message: 'no Ready node answers with the ring', degraded: true };
    const member = view.member(name);
    if (member === undefined || member.state !== 'normal') return { message: `${name} is ${member?.state ?? 'not a member of the ring'}`, degraded: member === undefined };
    const stale = view.staleAddress(name);
    if (stale !== undefined) return { message: stale, degraded: false };
  }
  if (o.ring !== undefined && o.ring.transfersPending > 0) return { message: `a membership change is still streaming${view.transfersMessage()}`, degraded: false };
  return undefined;
}

function outdatedPods(view: View) {
  const revision = view.o.statefulSet?.updateRevision;
  if (revision === undefined) return [];
  return view.o.pods.filter((p) => p.ordinal < view.stsReplicas && p.revision !== undefined && p.revision !== revision).sort((a, b) => b.ordinal - a.ordinal);
}

function finish(view: View, outcome: Outcome): Decision {
  const o = view.o;
  const spec = view.spec;
  const previous = o.previous;
  const op = outcome.operation;
  const readyReplicas = o.pods.filter((p) => p.ready && !p.terminating).length;
  const initialized = previous.initialized || outcome.result?.initialized === true;
  const rebalancing = o.ring !== undefined && (o.ring.transfersPending > 0 || o.ring.members.some((m) => m.state === 'joining' || m.state === 'leaving'));
  const target = outcome.blocked === undefined ? spec.replicas : view.stsReplicas;
  const settled = op === null && outcome.waiting === undefined && outcome.statefulSetReplicas === target && outdatedPods(view).length === 0;
  const degraded = outcome.degraded;
  const values: Record<ConditionType, ConditionValue> = {
    Ready: settled
      ? { status: true, reason: 'AllMembersNormal', message: `${readyReplicas} nodes Ready and normal` }
      : { status: false, reason: op?.type ?? 'NotSettled', message: op?.message ?? outcome.waiting ?? 'converging' },
    Progressing: op !== null ? { status: true, reason: op.type, message: op.message } : { status: false, reason: 'Idle', message: 'no operation in flight' },
    Degraded: degraded !== undefined ? { status: true, ...degraded } : { status: false, reason: 'Healthy', message: 'no problem seen' },
    ScalingUp: flag(op?.type === 'ScaleUp', op),
    ScalingDown: flag(op?.type === 'ScaleDown', op),
    Rebalancing: rebalancing ? { status: true, reason: 'Streaming', message: `partitions are moving${view.transfersMessage()}` } : { status: false, reason: 'Balanced', message: 'no partition is moving' },
    ScaleDownBlocked: outcome.blocked !== undefined ? { status: true, reason: 'BelowReplicationFactor', message: outcome.blocked } : { status: false, reason: 'NotBlocked', message: 'no scale-down is refused' },
  };
  const events = [...outcome.events];
  const before = (type: ConditionType) => previous.conditions.find((c) => c.type === type);
  if (outcome.blocked !== undefined && !(before('ScaleDownBlocked')?.status === 'True' && before('ScaleDownBlocked')?.message === outcome.blocked)) {
    events.push({ type: 'Warning', reason: 'ScaleDownBlocked', message: outcome.blocked });
  }
  if (degraded !== undefined && !(before('Degraded')?.status === 'True' && before('Degraded')?.reason === degraded.reason)) {
    events.push({ type: 'Warning', reason: degraded.reason, message: degraded.message });
  }
  const status: ClusterStatus = {
    observedGeneration: o.cluster.generation,
    replicas: outcome.statefulSetReplicas,
    readyReplicas,
    selector: selectorString(o.cluster.name),
    phase: phaseOf(op, initialized, degraded !== undefined, outcome.statefulSetReplicas - target),
    conditions: mergeConditions(previous.conditions, values, o.nowMs, o.cluster.generation),
    members: memberStatus(view) ?? previous.members,
    operation: op,
    ringVersion: o.ring?.version ?? previous.ringVersion,
    configHash: configHash(spec),
    initialized,
  };
  const justDone = op === null && outcome.result?.done !== undefined;
  const requeueAfterMs = op !== null ? REQUEUE_OPERATION_MS : justDone ? REQUEUE_AFTER_DONE_MS : settled ? REQUEUE_STEADY_MS : REQUEUE_UNHEALTHY_MS;
  return { apply: true, statefulSetReplicas: outcome.statefulSetReplicas, status, action: outcome.result?.action, events, requeueAfterMs };
}

function flag(on: boolean, op: Operation | null): ConditionValue {
  return on && op !== null ? { status: true, reason: op.step || op.type, message: op.message } : { status: false, reason: 'Idle', message: 'not in progress' };
}

/** A pod other than the one the operation is about that is not Ready: worth a Degraded flag. */
function otherPodsDown(view: View, op: Operation): string | undefined {
  for (let ordinal = 0; ordinal < view.stsReplicas; ordinal++) {
    const name = names.pod(view.o.cluster.name, ordinal);
    if (name === op.pod) continue;
    const pod = view.pod(name);
    if (pod === undefined || !pod.ready) return `${name} is not Ready`;
  }
  return undefined;
}

function memberStatus(view: View): MemberStatus[] | undefined {
  const ring = view.o.ring;
  if (ring === undefined) return undefined;
  return ring.members.map((m) => ({ pod: m.id, nodeId: m.id, state: m.state, up: m.up, ownership: Math.round(m.ownership * 10_000) / 10_000 }));
}

/** `surplus`: StatefulSet replicas minus the size wanted, so that the phase does not flicker to Running between two joins. */
function phaseOf(op: Operation | null, initialized: boolean, degraded: boolean, surplus: number): Phase {
  if (!initialized) return 'Creating';
  if (op?.type === 'ScaleUp') return 'ScalingUp';
  if (op?.type === 'ScaleDown') return 'ScalingDown';
  if (op?.type === 'RollingUpdate') return 'Updating';
  if (degraded) return 'Degraded';
  if (surplus < 0) return 'ScalingUp';
  if (surplus > 0) return 'ScalingDown';
  return 'Running';
}

