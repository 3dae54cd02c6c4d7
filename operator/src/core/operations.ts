/**
 * The steps of each topology operation, one function per type. Each looks at what is observed now
 * (never at what it did last time) and answers the next step: an action, a wait, or done. That
 * makes every step safe to repeat, which is what lets a restarted operator, or a standby that took
 * over, continue from the operation recorded in status.
 *
 * Invariants, as in cass-operator and scylla-operator: one operation at a time; the StatefulSet
 * shrinks only after the ring shows the node `left` and the node, knowing it left, holds no hint;
 * a node counts as added only when it is `normal` and Ready (its partitions have arrived).
 */
import { names } from './names';
import type { Action, Observed, PodView, RingMemberView } from './observed';
import type { ClusterSpec, Operation } from './types';

export interface StepResult {
  readonly statefulSetReplicas: number;
  readonly action?: Action;
  /** The step the operation is at now; absent when the operation is finished. */
  readonly step?: { readonly name: string; readonly message: string };
  /** The completion event when the operation finished. */
  readonly done?: { readonly reason: string; readonly message: string };
  /** Something is wrong but the operation goes on (a timeout); shown as Degraded. */
  readonly problem?: { readonly reason: string; readonly message: string };
  /** Set when ordinal 0 of a new cluster has been initialised. */
  readonly initialized?: boolean;
}

/** Read-only helpers over one observation. */
export class View {
  constructor(
    readonly o: Observed,
    readonly spec: ClusterSpec,
  ) {}

  /**
   * The StatefulSet's replicas. When it is not seen, the size last recorded in status for a
   * cluster that exists, never 0: deciding from a missing object must not shrink anything.
   */
  get stsReplicas(): number {
    return this.o.statefulSet?.replicas ?? (this.o.previous.initialized ? this.o.previous.replicas : 0);
  }

  pod(name: string): PodView | undefined {
    return this.o.pods.find((p) => p.name === name);
  }

  member(id: string): RingMemberView | undefined {
    return this.o.ring?.members.find((m) => m.id === id);
  }

  pvcExists(ordinal: number): { exists: boolean; terminating: boolean } {
    const pvc = this.o.pvcs.find((c) => c.name === names.pvc(this.o.cluster.name, ordinal));
    return { exists: pvc !== undefined, terminating: pvc?.terminating === true };
  }

  /** Ready pods of the current StatefulSet, lowest ordinal first. */
  readyPods(except?: string): PodView[] {
    return this.o.pods
      .filter((p) => p.ready && !p.terminating && p.ordinal < this.stsReplicas && p.name !== except)
      .sort((a, b) => a.ordinal - b.ordinal);
  }

  /** A Ready node other than `except` to send an admin call through, preferring the ring's source. */
  gateway(except: string): string | undefined {
    const source = this.o.ring?.source;
    if (source !== undefined && source !== except && this.pod(source)?.ready === true) return source;
    return this.readyPods(except)[0]?.name;
  }

  /**
   * Where the ring still lists a member at an address its pod no longer has (it restarted on a
   * new pod IP and the ring has not caught up), a description of it. Until the ring knows the new
   * address, other nodes cannot reach that member, so no further change may start.
   */
  staleAddress(name: string): string | undefined {
    const pod = this.pod(name);
    const member = this.member(name);
    if (pod?.ip === undefined || member?.host === undefined || member.host === pod.ip) return undefined;
    return `the ring still lists ${name} at ${member.host}; its pod is at ${pod.ip}`;
  }

  /**
   * Why the node `name`, which the ring shows `left`, may still hold the only copies of some
   * acknowledged writes, or undefined when its pod may go. A leaving node coordinates client
   * writes until it learns that it left, storing a hint when a primary is slow or down; the leave
   * commits when the partitions have streamed, with no regard for those hints. So the pod (and its
   * volume) may go only once the node itself knows it left (it then refuses writes) and reports
   * no hint waiting. A node that cannot be read counts as holding some.
   */
  hintsHeldBy(name: string): string | undefined {
    const backlog = this.o.hintBacklogs[name];
    if (backlog === undefined) return `waiting to read the hint backlog of ${name} (its pod is not running) before removing it`;
    if (backlog > 0) return `waiting for ${backlog} hints on ${name} to be delivered before removing it`;
    const own = this.o.selfStates[name];
    if (own !== 'left') return `waiting for ${name} to learn that it left (it says ${own ?? 'nothing'}; until then it may take writes as hints) before removing it`;
    return undefined;
  }

  hintBacklog(): number {
    return Object.values(this.o.hintBacklogs).reduce((sum, n) => sum + n, 0);
  }

  elapsedSeconds(op: Operation): number {
    const started = Date.parse(op.startedAt);
    return Number.isFinite(started) ? Math.max(0, (this.o.nowMs - started) / 1000) : 0;
  }

  transfersMessage(): string {
    const ring = this.o.ring;
    if (ring === undefined || ring.transfersTotal === 0) return '';
    return ` (${ring.transfersTotal - ring.transfersPending}/${ring.transfersTotal} transfers done)`;
  }
}

function timeout(view: View, op: Operation, seconds: number, what: string): StepResult['problem'] {
  if (view.elapsedSeconds(op) <= seconds) return undefined;
  return { reason: `${op.type}TimedOut`, message: `${what} has taken more than ${seconds}s; the operation goes on, check the node's logs and GET /v1/handoff` };
}

/** Adds ordinal k: grow the StatefulSet, init or join the new node, wait until it is normal and Ready. */
export function scaleUpStep(view: View, op: Operation): StepResult {
  const { ordinal: k, pod: name } = op;
  const stay = view.stsReplicas;
  const pod = view.pod(name);
  const member = view.member(name);
  const problem = timeout(view, op, view.spec.scaling.joinTimeoutSeconds, `adding ${name}`);
  if (view.stsReplicas < k + 1) {
    // A claim left over from an earlier life of this ordinal holds a node that left the ring;
    // such a node cannot be admitted again, so the claim goes before the pod is created.
    const pvc = view.pvcExists(k);
    if (pvc.exists && pod === undefined && member?.state === 'left') {
      if (pvc.terminating) return { statefulSetReplicas: stay, step: { name: 'WaitStaleClaim', message: `waiting for the old claim of ${name} to be deleted` }, problem };
      return {
        statefulSetReplicas: stay,
        action: { kind: 'DeletePVC', pvc: names.pvc(view.o.cluster.name, k) },
        step: { name: 'DeleteStaleClaim', message: `deleting ${names.pvc(view.o.cluster.name, k)}: it belongs to a node that left the ring` },
        problem,
      };
    }
    return { statefulSetReplicas: k + 1, step: { name: 'AddPod', message: `adding pod ${name} (StatefulSet replicas ${k + 1})` }, problem };
  }
  const replicas = view.stsReplicas;
  if (pod === undefined || !pod.running || pod.ip === undefined || pod.terminating) {
    return { statefulSetReplicas: replicas, step: { name: 'WaitPod', message: `waiting for pod ${name} to run` }, problem };
  }
  if (k === 0 && !view.o.previous.initialized) {
    if (pod.ready) return { statefulSetReplicas: replicas, initialized: true, done: { reason: 'Initialized', message: `${name} founded the cluster and is Ready` } };
    return { statefulSetReplicas: replicas, action: { kind: 'Init', pod: name }, step: { name: 'InitSent', message: `initialising ${name} as the founding node` }, problem };
  }
  if (view.o.ring === undefined) {
    return { statefulSetReplicas: replicas, step: { name: 'WaitRing', message: `no Ready node answers; ${name} cannot join yet` }, problem };
  }
  if (member === undefined || member.state === 'left') {
    const seed = view.gateway(name);
    if (seed === undefined) return { statefulSetReplicas: replicas, step: { name: 'WaitRing', message: `no Ready node to join ${name} through` }, problem };
    return { statefulSetReplicas: replicas, action: { kind: 'Join', pod: name, seedPod: seed }, step: { name: 'JoinSent', message: `joining ${name} through ${seed}` }, problem };
  }
  if (member.state !== 'normal') {
    return { statefulSetReplicas: replicas, step: { name: 'Joining', message: `${name} is ${member.state}: its partitions are streaming in${view.transfersMessage()}` }, problem };
  }
  if (!pod.ready) return { statefulSetReplicas: replicas, step: { name: 'WaitReady', message: `${name} is normal, waiting for it to be Ready` }, problem };
  return { statefulSetReplicas: replicas, done: { reason: 'Joined', message: `${name} joined the ring and is Ready` } };
}

/**
 * Removes ordinal k: leave, wait until the ring shows it left and its hints were delivered,
 * shrink, then apply the claim policy.
 */
export function scaleDownStep(view: View, op: Operation): StepResult {
  const { ordinal: k, pod: name } = op;
  const replicas = view.stsReplicas;
  const problem = timeout(view, op, view.spec.scaling.leaveTimeoutSeconds, `removing ${name}`);
  if (view.o.statefulSet === undefined) return { statefulSetReplicas: replicas, step: { name: 'WaitStatefulSet', message: `the StatefulSet is not visible; waiting before removing ${name}` }, problem };
  if (replicas > k) {
    const member = view.member(name);
    if (view.o.ring === undefined) return { statefulSetReplicas: replicas, step: { name: 'WaitRing', message: `no Ready node answers; waiting before removing ${name}` }, problem };
    if (member !== undefined && (member.state === 'normal' || member.state === 'joining')) {
      const via = view.gateway(name) ?? name;
      return { statefulSetReplicas: replicas, action: { kind: 'Leave', pod: name, viaPod: via }, step: { name: 'LeaveSent', message: `asked ${name} to leave the ring` }, problem };
    }
    if (member !== undefined && member.state === 'leaving') {
      return { statefulSetReplicas: replicas, step: { name: 'Leaving', message: `${name} is leaving: its partitions are streaming to their new owners${view.transfersMessage()}` }, problem };
    }
    // The ring shows the node left: its partitions live elsewhere now, but hints it took as a
    // stand-in (sloppy quorum) did not move with them; it delivers them itself, as a left node.
    const held = member === undefined ? undefined : view.hintsHeldBy(name);
    if (held !== undefined) return { statefulSetReplicas: replicas, step: { name: 'WaitHints', message: held }, problem };
    // Left with nothing held, or the ring never knew it (it took no writes): nothing lives only here.
    return { statefulSetReplicas: k, step: { name: 'Shrink', message: `${name} left the ring; shrinking the StatefulSet to ${k}` }, problem };
  }
  if (view.pod(name) !== undefined) return { statefulSetReplicas: replicas, step: { name: 'WaitPodGone', message: `waiting for pod ${name} to terminate` }, problem };
  const pvc = view.pvcExists(k);
  if (view.spec.scaling.deletePVCOnScaleDown && pvc.exists) {
    if (pvc.terminating) return { statefulSetReplicas: replicas, step: { name: 'WaitClaimGone', message: `waiting for the claim of ${name} to be deleted` }, problem };
    return { statefulSetReplicas: replicas, action: { kind: 'DeletePVC', pvc: names.pvc(view.o.cluster.name, k) }, step: { name: 'DeleteClaim', message: `deleting the claim of ${name}` }, problem };
  }
  const kept = pvc.exists ? ' (its claim is kept)' : '';
  return { statefulSetReplicas: replicas, done: { reason: 'Removed', message: `${name} left the ring and was removed${kept}` } };
}

/** Restarts one outdated pod and waits until it is Ready again and every hint was delivered. */
export function rollingUpdateStep(view: View, op: Operation): StepResult {
  const name = op.pod;
  const replicas = view.stsReplicas;
  const pod = view.pod(name);
  const updateRevision = view.o.statefulSet?.updateRevision;
  const problem = timeout(view, op, view.spec.scaling.updateTimeoutSeconds, `restarting ${name}`);
  if (op.ordinal >= replicas) return { statefulSetReplicas: replicas, done: { reason: 'UpdateSkipped', message: `${name} is no longer part of the StatefulSet` } };
  if (pod !== undefined && !pod.terminating && updateRevision !== undefined && pod.revision !== updateRevision) {
    return { statefulSetReplicas: replicas, action: { kind: 'DeletePod', pod: name }, step: { name: 'DeletePod', message: `restarting ${name} on revision ${updateRevision}` }, problem };
  }
  if (pod === undefined || pod.terminating || !pod.running) return { statefulSetReplicas: replicas, step: { name: 'WaitPod', message: `waiting for ${name} to restart` }, problem };
  if (!pod.ready) return { statefulSetReplicas: replicas, step: { name: 'WaitReady', message: `waiting for ${name} to be Ready` }, problem };
  const stale = view.staleAddress(name);
  if (stale !== undefined) return { statefulSetReplicas: replicas, step: { name: 'WaitAddress', message: `${name} is Ready; waiting for the ring to learn its new address (${stale})` }, problem };
  const backlog = view.hintBacklog();
  if (backlog > 0) return { statefulSetReplicas: replicas, step: { name: 'WaitHints', message: `${name} is Ready; waiting for ${backlog} hints to be delivered` }, problem };
  return { statefulSetReplicas: replicas, done: { reason: 'PodUpdated', message: `${name} runs revision ${updateRevision ?? 'current'}, is Ready, and no hints wait` } };
}
