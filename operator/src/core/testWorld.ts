/**
 * A toy world for the state machine's tests: a StatefulSet, its pods and claims, and a ring whose
 * joins and leaves take a few ticks. It executes decide()'s output the way the adapters and the
 * real nodes would, so a test can drive the machine through whole scale-ups and scale-downs and
 * check invariants at every step. Pure and deterministic like the rest of the core.
 */
import { decide } from './machine';
import { names } from './names';
import type { Decision, Observed, PodView, RingMemberView } from './observed';
import { normalizeSpec } from './spec';
import { emptyStatus } from './status';
import type { ClusterStatus, JsonObject, MemberState } from './types';

export const CLUSTER = { name: 'kv', namespace: 'db', uid: 'uid-1' };
export const START_MS = Date.UTC(2026, 10, 25, 12, 0, 0);

interface WorldPod {
  running: boolean;
  revision: string;
  terminating: boolean;
}

export class World {
  nowMs = START_MS;
  generation = 1;
  spec: JsonObject;
  status: ClusterStatus = emptyStatus('');
  secret: Observed['secret'] = 'present';
  sts: { replicas: number; updateRevision: string } | undefined;
  pods = new Map<string, WorldPod>();
  pvcs = new Set<string>();
  ring = new Map<string, { state: MemberState; ticks: number; host?: string }>();
  /** Pod IPs change on every restart, as on Kubernetes; `restarts` counts them per pod. */
  restarts = new Map<string, number>();
  /** When false, the ring does not learn a restarted pod's new address (a lagging node). */
  addressesFollow = true;
  hints = 0;
  /**
   * Hints a node holds as a stand-in, per pod, reported by that pod itself (also when it is not
   * Ready, as the adapter asks the pod a scale-down removes). One is delivered per tick while the
   * pod runs, unless `deliveryStalled` (the key's owner is down).
   */
  held = new Map<string, number>();
  deliveryStalled = false;
  /** Ticks a node takes to learn that it left after the ring source shows it `left` (gossip). */
  learnLeftTicks = 0;
  /** Ticks a join or leave streams before it completes. */
  streamTicks = 2;
  decisions: Decision[] = [];

  constructor(spec: JsonObject) {
    this.spec = spec;
  }

  setSpec(patch: JsonObject): void {
    this.spec = { ...this.spec, ...patch };
    this.generation++;
  }

  observe(): Observed {
    const pods: PodView[] = [...this.pods.entries()].map(([name, pod]) => {
      const ordinal = Number(name.slice(CLUSTER.name.length + 1));
      return { name, ordinal, ip: pod.running ? this.ipOf(name) : undefined, running: pod.running, ready: this.podReady(name), terminating: pod.terminating, revision: pod.revision };
    });
    const readySource = pods.filter((p) => p.ready).sort((a, b) => a.ordinal - b.ordinal)[0];
    const members: RingMemberView[] = [...this.ring.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, m]) => ({ id, state: m.state, up: true, ownership: 0, host: m.host }));
    const moving = members.filter((m) => m.state === 'joining' || m.state === 'leaving').length;
    return {
      nowMs: this.nowMs,
      cluster: { ...CLUSTER, generation: this.generation },
      spec: normalizeSpec(CLUSTER.name, this.spec, { image: 'dynamokv/node:test' }),
      previous: this.status,
      secret: this.secret,
      statefulSet: this.sts === undefined ? undefined : { replicas: this.sts.replicas, updateRevision: this.sts.updateRevision, ringSettings: undefined },
      pods,
      pvcs: [...this.pvcs].map((name) => ({ name, terminating: false })),
      ring: readySource === undefined ? undefined : { source: readySource.name, version: 1, members, transfersPending: moving * 3, transfersTotal: moving * 4 },
      ...this.hintsObserved(pods, readySource),
    };
  }

  /** What the adapter's readHints answers: the Ready pods' backlogs, and the removed pod's. */
  private hintsObserved(pods: readonly PodView[], readySource: PodView | undefined): Pick<Observed, 'hintBacklogs' | 'selfStates'> {
    const operation = this.status.operation;
    const removing = operation?.type === 'ScaleDown' ? operation.pod : undefined;
    const hintBacklogs: Record<string, number> = {};
    const selfStates: Record<string, MemberState> = {};
    for (const pod of pods) {
      if (pod.ip === undefined || !(pod.ready || pod.name === removing)) continue;
      hintBacklogs[pod.name] = (this.held.get(pod.name) ?? 0) + (pod.name === readySource?.name ? this.hints : 0);
      const own = this.selfState(pod.name);
      if (own !== undefined) selfStates[pod.name] = own;
    }
    return { hintBacklogs, selfStates };
  }

  /** A member's state as the node itself sees it: it learns that it left `learnLeftTicks` late. */
  selfState(name: string): MemberState | undefined {
    const member = this.ring.get(name);
    if (member?.state === 'left' && member.ticks < this.learnLeftTicks) return 'leaving';
    return member?.state;
  }

  ipOf(name: string): string {
    const ordinal = Number(name.slice(CLUSTER.name.length + 1));
    return `10.${this.restarts.get(name) ?? 0}.0.${ordinal + 1}`;
  }

  podReady(name: string): boolean {
    const pod = this.pods.get(name);
    return pod !== undefined && pod.running && !pod.terminating && this.ring.get(name)?.state === 'normal';
  }

  /** One reconcile pass: decide, then carry the decision out, then let time pass. */
  step(): Decision {
    const decision = decide(this.observe());
    this.decisions.push(decision);
    this.status = decision.status;
    if (decision.action?.kind === 'CreateSecret') this.secret = 'present';
    if (decision.apply) {
      const revision = this.sts?.updateRevision ?? 'rev-1';
      this.sts = { replicas: decision.statefulSetReplicas, updateRevision: revision };
    }
    this.execute(decision);
    this.tick();
    return decision;
  }

  private execute(decision: Decision): void {
    const action = decision.action;
    if (action === undefined) return;
    if (action.kind === 'Init' && this.pods.get(action.pod)?.running === true && this.ring.size === 0) this.ring.set(action.pod, { state: 'normal', ticks: 0, host: this.ipOf(action.pod) });
    if (action.kind === 'Join') {
      const member = this.ring.get(action.pod);
      if ((member === undefined || member.state === 'left') && this.podReady(action.seedPod)) this.ring.set(action.pod, { state: 'joining', ticks: 0, host: this.ipOf(action.pod) });
    }
    if (action.kind === 'Leave') {
      const member = this.ring.get(action.pod);
      if (member?.state === 'normal') this.ring.set(action.pod, { ...member, state: 'leaving', ticks: 0 });
    }
    if (action.kind === 'DeletePod') {
      const pod = this.pods.get(action.pod);
      if (pod !== undefined) pod.terminating = true;
    }
    if (action.kind === 'DeletePVC') this.pvcs.delete(action.pvc);
  }

  /** The StatefulSet controller, the kubelet and the nodes' streaming, one step each. */
  private tick(): void {
    this.nowMs += 2_000;
    const replicas = this.sts?.replicas ?? 0;
    for (const [name, pod] of [...this.pods.entries()]) {
      const ordinal = Number(name.slice(CLUSTER.name.length + 1));
      if (pod.terminating || ordinal >= replicas) {
        this.pods.delete(name);
        this.restarts.set(name, (this.restarts.get(name) ?? 0) + 1);
      }
    }
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      const name = names.pod(CLUSTER.name, ordinal);
      const pod = this.pods.get(name);
      if (pod === undefined) {
        this.pods.set(name, { running: false, revision: this.sts?.updateRevision ?? 'rev-1', terminating: false });
        this.pvcs.add(names.pvc(CLUSTER.name, ordinal));
      } else pod.running = true;
    }
    for (const [id, member] of this.ring) {
      member.ticks++;
      if (this.addressesFollow && this.pods.get(id)?.running === true) member.host = this.ipOf(id);
      if (member.state === 'joining' && member.ticks >= this.streamTicks) this.ring.set(id, { ...member, state: 'normal', ticks: 0 });
      if (member.state === 'leaving' && member.ticks >= this.streamTicks) this.ring.set(id, { ...member, state: 'left', ticks: 0 });
    }
    if (this.hints > 0) this.hints--;
    for (const [name, count] of this.held) {
      if (count > 0 && !this.deliveryStalled && this.pods.get(name)?.running === true) this.held.set(name, count - 1);
    }
  }

  /** Steps until nothing is in flight and the cluster is Ready, at most `limit` passes. */
  settle(limit = 200): number {
    for (let i = 0; i < limit; i++) {
      const decision = this.step();
      const ready = decision.status.conditions.find((c) => c.type === 'Ready')?.status === 'True';
      if (ready && decision.status.operation === null && decision.action === undefined) return i + 1;
    }
    throw new Error(`the cluster did not settle in ${limit} passes: ${JSON.stringify(this.status.operation)} ${this.status.conditions.map((c) => `${c.type}=${c.status}:${c.message}`).join(' | ')}`);
  }

  activeMembers(): string[] {
    return [...this.ring.entries()].filter(([, m]) => m.state !== 'left').map(([id]) => id).sort();
  }
}
