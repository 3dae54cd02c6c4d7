/**
 * The scaling and rolling-update choreography, decided by the pure state machine. Table tests pin
 * single decisions (what one observation leads to); the World tests drive whole operations the way
 * the adapters and the nodes would, and a property test checks the choreography's invariants over
 * random sequences of desired sizes.
 */
import fc from 'fast-check';
import { decide } from './machine';
import { names } from './names';
import { CLUSTER, World } from './testWorld';
import type { Decision } from './observed';

const condition = (d: Decision, type: string) => d.status.conditions.find((c) => c.type === type);

function bootstrapped(replicas = 3, extra: Record<string, unknown> = {}): World {
  const world = new World({ replicas, replicationFactor: 3, readQuorum: 2, writeQuorum: 2, ...extra } as never);
  world.settle();
  return world;
}

describe('a new cluster', () => {
  test('creates the Secret first and applies nothing before it exists', () => {
    const world = new World({ replicas: 3 });
    world.secret = 'missing';
    const decision = world.step();
    expect(decision.action).toEqual({ kind: 'CreateSecret' });
    expect(decision.apply).toBe(false);
    expect(decision.events.map((e) => e.reason)).toEqual(['CredentialsCreated']);
  });

  test('founds the cluster on ordinal 0 with init, then joins the others one at a time', () => {
    const world = new World({ replicas: 3 });
    const first = world.step();
    expect(first.status.operation).toMatchObject({ type: 'ScaleUp', pod: 'kv-0', ordinal: 0 });
    expect(first.statefulSetReplicas).toBe(1);
    expect(first.status.phase).toBe('Creating');
    world.settle();
    const actions = world.decisions.flatMap((d) => (d.action === undefined ? [] : [d.action]));
    expect(actions).toEqual([
      { kind: 'Init', pod: 'kv-0' },
      { kind: 'Join', pod: 'kv-1', seedPod: 'kv-0' },
      { kind: 'Join', pod: 'kv-2', seedPod: 'kv-0' },
    ]);
    expect(world.status.initialized).toBe(true);
    expect(world.status.phase).toBe('Running');
    expect(world.activeMembers()).toEqual(['kv-0', 'kv-1', 'kv-2']);
  });

  test('sends init only while ordinal 0 is not Ready, and never again once initialised', () => {
    const world = bootstrapped(3);
    const inits = world.decisions.filter((d) => d.action?.kind === 'Init').length;
    expect(inits).toBe(1);
    world.ring.clear(); // Even if every node forgot the ring, init is not sent twice.
    for (let i = 0; i < 5; i++) expect(world.step().action?.kind).not.toBe('Init');
  });
});

describe('scale up', () => {
  test('adds one pod at a time: the StatefulSet grows again only after the new node is normal and Ready', () => {
    const world = bootstrapped(3);
    world.setSpec({ replicas: 5 });
    world.decisions = [];
    world.settle();
    const fifthPodAt = world.decisions.findIndex((d) => d.statefulSetReplicas === 5);
    const fourthJoinedAt = world.decisions.findIndex((d) => d.events.some((e) => e.reason === 'Joined' && e.message.startsWith('kv-3 ')));
    expect(fourthJoinedAt).toBeGreaterThanOrEqual(0);
    expect(fifthPodAt).toBeGreaterThan(fourthJoinedAt);
    const sizes = world.decisions.map((d) => d.statefulSetReplicas);
    expect(sizes[0]).toBe(4);
    expect(sizes.filter((n, i) => i > 0 && n !== sizes[i - 1])).toEqual([5]);
    expect(world.decisions.slice(0, -1).every((d) => d.status.phase === 'ScalingUp')).toBe(true);
    const joined = world.decisions.flatMap((d) => d.events.filter((e) => e.reason === 'Joined').map((e) => e.message.split(' ')[0]));
    expect(joined).toEqual(['kv-3', 'kv-4']);
    expect(world.activeMembers()).toHaveLength(5);
  });

  test('waits, and says so, while the new node streams its partitions', () => {
    const world = bootstrapped(3);
    world.streamTicks = 6;
    world.setSpec({ replicas: 4 });
    let sawJoining = false;
    for (let i = 0; i < 6; i++) {
      const d = world.step();
      if (d.status.operation?.step === 'Joining') {
        sawJoining = true;
        expect(d.action).toBeUndefined();
        expect(condition(d, 'Rebalancing')?.status).toBe('True');
        expect(condition(d, 'ScalingUp')?.status).toBe('True');
        expect(condition(d, 'Ready')?.status).toBe('False');
      }
    }
    expect(sawJoining).toBe(true);
  });

  test('deletes the left-over claim of a node that left before the ordinal is added again', () => {
    const world = bootstrapped(4, { scaling: { deletePVCOnScaleDown: false } });
    world.setSpec({ replicas: 3 });
    world.settle();
    expect(world.pvcs.has(names.pvc(CLUSTER.name, 3))).toBe(true);
    expect(world.ring.get('kv-3')?.state).toBe('left');
    world.setSpec({ replicas: 4 });
    const first = world.step();
    expect(first.action).toEqual({ kind: 'DeletePVC', pvc: 'data-kv-3' });
    expect(first.statefulSetReplicas).toBe(3);
    world.settle();
    expect(world.ring.get('kv-3')?.state).toBe('normal');
  });
});

describe('scale down', () => {
  test('records the intent, leaves, waits for left, then shrinks and deletes the claim', () => {
    const world = bootstrapped(4);
    world.setSpec({ replicas: 3 });
    const first = world.step();
    expect(first.status.operation).toMatchObject({ type: 'ScaleDown', pod: 'kv-3', step: 'LeaveSent' });
    expect(first.action).toEqual({ kind: 'Leave', pod: 'kv-3', viaPod: 'kv-0' });
    expect(first.statefulSetReplicas).toBe(4);
    world.decisions = [first];
    world.settle();
    const shrinkAt = world.decisions.findIndex((d) => d.statefulSetReplicas === 3);
    expect(shrinkAt).toBeGreaterThan(0);
    expect(world.decisions.slice(0, shrinkAt).every((d) => d.status.operation?.type === 'ScaleDown')).toBe(true);
    expect(world.decisions.some((d) => d.action?.kind === 'DeletePVC')).toBe(true);
    expect(world.pvcs.has('data-kv-3')).toBe(false);
    expect(world.activeMembers()).toEqual(['kv-0', 'kv-1', 'kv-2']);
  });

  test('never shrinks the StatefulSet while the ring shows the node leaving', () => {
    const world = bootstrapped(4);
    world.streamTicks = 5;
    world.setSpec({ replicas: 3 });
    for (let i = 0; i < 12; i++) {
      const state = world.ring.get('kv-3')?.state;
      const d = world.step();
      if (state !== 'left' && state !== undefined) expect(d.statefulSetReplicas).toBe(4);
    }
  });

  test('a node that left while holding hints is removed only after it delivered them', () => {
    // A leaving node coordinates writes until it learns it left; what it stored as a stand-in for
    // a down primary is not part of the leave's handoff. Removing its pod would lose those copies.
    const world = bootstrapped(4);
    world.held.set('kv-3', 3);
    world.deliveryStalled = true;
    world.setSpec({ replicas: 3 });
    for (let i = 0; i < 10; i++) world.step();
    expect(world.ring.get('kv-3')?.state).toBe('left');
    expect(world.sts?.replicas).toBe(4);
    expect(world.pods.has('kv-3')).toBe(true);
    expect(world.status.operation).toMatchObject({ type: 'ScaleDown', pod: 'kv-3', step: 'WaitHints', message: 'waiting for 3 hints on kv-3 to be delivered before removing it' });
    expect(world.decisions.flatMap((d) => d.events).filter((e) => e.reason === 'WaitHints')).toHaveLength(1);
    world.deliveryStalled = false;
    const shrunkWithHeld: number[] = [];
    const waitMessages: string[] = [];
    for (let i = 0; i < 20 && world.sts?.replicas === 4; i++) {
      const held = world.held.get('kv-3') ?? 0;
      const d = world.step();
      if (d.statefulSetReplicas === 3) shrunkWithHeld.push(held);
      if (d.status.operation?.step === 'WaitHints') waitMessages.push(d.status.operation.message);
    }
    expect(shrunkWithHeld).toEqual([0]);
    expect(waitMessages.map((m) => m.split(' ')[2])).toEqual(['3', '2', '1']);
    world.settle();
    expect(world.pvcs.has('data-kv-3')).toBe(false);
    expect(world.activeMembers()).toEqual(['kv-0', 'kv-1', 'kv-2']);
  });

  test('a node the ring shows left is not removed before it knows itself that it left', () => {
    // Until it learns it left, a node takes client writes and may store new hints, so a backlog
    // of 0 read from it then proves nothing.
    const world = bootstrapped(4);
    world.learnLeftTicks = 3;
    world.setSpec({ replicas: 3 });
    const sawWaiting: string[] = [];
    for (let i = 0; i < 20 && world.sts?.replicas === 4; i++) {
      const own = world.selfState('kv-3');
      const d = world.step();
      if (d.statefulSetReplicas === 3) expect(own).toBe('left');
      if (d.status.operation?.step === 'WaitHints') sawWaiting.push(d.status.operation.message);
    }
    expect(world.sts?.replicas).toBe(3);
    expect(sawWaiting.length).toBeGreaterThan(0);
    expect(sawWaiting[0]).toContain('waiting for kv-3 to learn that it left (it says leaving');
  });

  test('a left node whose backlog cannot be read is not removed; once read as 0 it is', () => {
    const world = bootstrapped(4);
    world.held.set('kv-3', 1);
    world.deliveryStalled = true;
    world.setSpec({ replicas: 3 });
    for (let i = 0; i < 10; i++) world.step();
    const o = world.observe();
    expect(o.previous.operation?.step).toBe('WaitHints');
    const others = Object.fromEntries(Object.entries(o.hintBacklogs).filter(([pod]) => pod !== 'kv-3'));
    const pods = o.pods.map((p) => (p.name === 'kv-3' ? { ...p, ip: undefined, running: false } : p));
    const unread = decide({ ...o, pods, hintBacklogs: others });
    expect(unread.statefulSetReplicas).toBe(4);
    expect(unread.status.operation?.message).toBe('waiting to read the hint backlog of kv-3 (its pod is not running) before removing it');
    const drained = decide({ ...o, hintBacklogs: { ...o.hintBacklogs, 'kv-3': 0 }, selfStates: { ...o.selfStates, 'kv-3': 'left' } });
    expect(drained.statefulSetReplicas).toBe(3);
    expect(drained.status.operation?.step).toBe('Shrink');
  });

  test('hints that never drain: the leave timeout flags Degraded once, and the pod still stays', () => {
    const world = bootstrapped(4, { scaling: { leaveTimeoutSeconds: 10 } });
    world.held.set('kv-3', 5);
    world.deliveryStalled = true;
    world.setSpec({ replicas: 3 });
    for (let i = 0; i < 15; i++) world.step();
    expect(world.status.operation?.step).toBe('WaitHints');
    expect(condition(world.decisions.at(-1) as Decision, 'Degraded')).toMatchObject({ status: 'True', reason: 'ScaleDownTimedOut' });
    expect(world.decisions.flatMap((d) => d.events).filter((e) => e.reason === 'ScaleDownTimedOut')).toHaveLength(1);
    expect(world.sts?.replicas).toBe(4);
    expect(world.pods.has('kv-3')).toBe(true);
  });

  test('below N the scale-down is refused: StatefulSet untouched, ScaleDownBlocked and one Warning event', () => {
    const world = bootstrapped(3);
    world.setSpec({ replicas: 2 });
    const first = world.step();
    expect(first.statefulSetReplicas).toBe(3);
    expect(first.action).toBeUndefined();
    expect(first.status.operation).toBeNull();
    expect(condition(first, 'ScaleDownBlocked')).toMatchObject({ status: 'True', reason: 'BelowReplicationFactor' });
    expect(first.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'ScaleDownBlocked' })]);
    const second = world.step();
    expect(second.events).toEqual([]);
    expect(condition(second, 'Ready')?.status).toBe('True');
    world.setSpec({ replicas: 3 });
    expect(condition(world.step(), 'ScaleDownBlocked')?.status).toBe('False');
  });

  test('a restarted operator resumes from the operation recorded in status', () => {
    const world = bootstrapped(4);
    world.setSpec({ replicas: 3 });
    world.step();
    world.step();
    const recorded = world.status.operation;
    expect(recorded?.type).toBe('ScaleDown');
    // A new process knows nothing but what the API server holds: the status it reads back.
    const restarted = new World(world.spec);
    Object.assign(restarted, { status: JSON.parse(JSON.stringify(world.status)), sts: world.sts, pods: world.pods, pvcs: world.pvcs, ring: world.ring, nowMs: world.nowMs, generation: world.generation });
    restarted.settle();
    expect(restarted.activeMembers()).toEqual(['kv-0', 'kv-1', 'kv-2']);
    expect(restarted.sts?.replicas).toBe(3);
    expect(restarted.decisions.some((d) => d.events.some((e) => e.reason === 'ScaleDownStarted'))).toBe(false);
  });
});

describe('a view without the StatefulSet (a cache that has not listed yet)', () => {
  test('mid scale-down: nothing shrinks and no action is taken', () => {
    const world = bootstrapped(4);
    world.setSpec({ replicas: 3 });
    world.step();
    const o = world.observe();
    expect(o.previous.operation?.type).toBe('ScaleDown');
    const d = decide({ ...o, statefulSet: undefined, pods: [], ring: undefined });
    expect(d.statefulSetReplicas).toBe(4);
    expect(d.action).toBeUndefined();
  });

  test('a running cluster: the StatefulSet is applied at the size recorded in status, with no operation', () => {
    const world = bootstrapped(3);
    const d = decide({ ...world.observe(), statefulSet: undefined, pods: [] });
    expect(d.statefulSetReplicas).toBe(3);
    expect(d.status.operation).toBeNull();
    expect(d.action).toBeUndefined();
  });
});

describe('rolling update', () => {
  test('restarts outdated pods one at a time, highest ordinal first, each after hints drained', () => {
    const world = bootstrapped(3);
    world.sts = { replicas: 3, updateRevision: 'rev-2' };
    world.hints = 2;
    const waiting = world.step();
    expect(waiting.action).toBeUndefined();
    expect(waiting.status.conditions.find((c) => c.type === 'Ready')?.message).toContain('hints');
    world.settle();
    const deleted = world.decisions.flatMap((d) => (d.action?.kind === 'DeletePod' ? [d.action.pod] : []));
    expect(deleted).toEqual(['kv-2', 'kv-1', 'kv-0']);
    expect([...world.pods.values()].every((p) => p.revision === 'rev-2')).toBe(true);
  });

  test('waits until the ring knows a restarted pod\'s new address before the next restart', () => {
    const world = bootstrapped(3);
    world.sts = { replicas: 3, updateRevision: 'rev-2' };
    world.addressesFollow = false;
    for (let i = 0; i < 10; i++) world.step();
    expect(world.status.operation).toMatchObject({ pod: 'kv-2', step: 'WaitAddress' });
    expect(world.decisions.filter((d) => d.action?.kind === 'DeletePod')).toHaveLength(1);
    world.addressesFollow = true;
    world.settle();
    expect(world.decisions.filter((d) => d.action?.kind === 'DeletePod')).toHaveLength(3);
  });
});

describe('specs the operator does not act on', () => {
  test('an invalid spec applies nothing and says why', () => {
    const world = new World({ replicas: 3, readQuorum: 4 });
    const d = world.step();
    expect(d.apply).toBe(false);
    expect(d.action).toBeUndefined();
    expect(d.status.phase).toBe('Invalid');
    expect(condition(d, 'Degraded')).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(d.events[0]).toMatchObject({ type: 'Warning', reason: 'InvalidSpec' });
    expect(world.step().events).toEqual([]);
  });

  test('changed ring settings are refused even if the CRD let them through', () => {
    const world = bootstrapped(3);
    const o = world.observe();
    const d = decide({ ...o, statefulSet: { replicas: 3, updateRevision: 'rev-1', ringSettings: 'partitions=16,replicationFactor=3,readQuorum=2,writeQuorum=2' } });
    expect(d.status.phase).toBe('Invalid');
    expect(condition(d, 'Degraded')?.reason).toBe('RingSettingsChanged');
  });

  test('paused: nothing is applied and no operation starts', () => {
    const world = bootstrapped(3);
    world.setSpec({ replicas: 5, paused: true });
    const d = world.step();
    expect(d).toMatchObject({ apply: false, action: undefined, statefulSetReplicas: 3 });
    expect(d.status.phase).toBe('Paused');
  });

  test('a lost Secret of a running cluster is never re-created with new values', () => {
    const world = bootstrapped(3);
    world.secret = 'missing';
    const d = world.step();
    expect(d.action).toBeUndefined();
    expect(condition(d, 'Degraded')).toMatchObject({ status: 'True', reason: 'CredentialsMissing' });
  });
});

describe('invariants over random resizing', () => {
  test('one change at a time, never below N, never shrink before left or with hints held, and the cluster converges', () => {
    const sizes = fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 5 });
    const ticks = fc.integer({ min: 1, max: 4 });
    const hints = fc.integer({ min: 0, max: 3 });
    const lag = fc.integer({ min: 0, max: 2 });
    fc.assert(
      fc.property(sizes, ticks, hints, lag, (sizes, streamTicks, heldPerNode, learnLeftTicks) => {
        const world = bootstrapped(3);
        world.streamTicks = streamTicks;
        world.learnLeftTicks = learnLeftTicks;
        for (const size of sizes) {
          // Every node took some writes as a stand-in before this resize.
          for (const pod of world.pods.keys()) world.held.set(pod, heldPerNode);
          // Below N the whole request is refused (the issue: "scale to 2 with N=3 -> blocked,
          // nothing removed"), so the cluster keeps the size it had.
          const expected = size < 3 ? (world.sts?.replicas ?? 3) : size;
          world.setSpec({ replicas: size });
          for (let i = 0; i < 60; i++) {
            const before = world.sts?.replicas ?? 0;
            const leavingOrJoining = [...world.ring.values()].filter((m) => m.state === 'joining' || m.state === 'leaving').length;
            const ownStateOfLast = world.selfState(names.pod(CLUSTER.name, before - 1));
            const d = world.step();
            expect(Math.abs(d.statefulSetReplicas - before)).toBeLessThanOrEqual(1);
            expect(d.statefulSetReplicas).toBeGreaterThanOrEqual(Math.min(3, before));
            if (d.statefulSetReplicas < before) {
              const removed = names.pod(CLUSTER.name, before - 1);
              expect(world.ring.get(removed)?.state ?? 'left').toBe('left');
              expect(world.held.get(removed) ?? 0).toBe(0);
              expect(ownStateOfLast).toBe('left');
            }
            expect(leavingOrJoining).toBeLessThanOrEqual(1);
          }
          // No pod went away with hints it had not delivered.
          expect([...world.held].filter(([pod, count]) => count > 0 && !world.pods.has(pod))).toEqual([]);
          expect(world.activeMembers()).toHaveLength(expected);
          expect(world.sts?.replicas).toBe(expected);
        }
      }),
      { numRuns: 60, seed: 6 },
    );
  });
});
