/**
 * The hint read that guards a scale-down (readHints) and its decoder (NodeAdmin.hints), without a
 * network: a NodeAdmin subclass answers per pod IP, and the decoder test stubs fetch. They prove
 * that the pod a scale-down removes is asked although it is not Ready (a leaving or left node
 * answers /readyz 503), that a silent node counts as holding a hint, and that the node's own
 * state is read from its own member list.
 */
import type { MemberState } from '../core/types';
import type { PodView } from '../core/observed';
import { NodeAdmin, type HintsAnswer } from './nodeAdmin';
import { readHints } from './observe';

class ScriptedAdmin extends NodeAdmin {
  readonly asked: string[] = [];

  constructor(private readonly answers: Record<string, HintsAnswer | 'silent'>) {
    super(undefined);
  }

  override async hints(ip: string): Promise<HintsAnswer> {
    this.asked.push(ip);
    const answer = this.answers[ip];
    if (answer === undefined || answer === 'silent') throw new Error(`${ip} does not answer`);
    return answer;
  }
}

function pod(ordinal: number, extra: Partial<PodView> = {}): PodView {
  return { name: `kv-${ordinal}`, ordinal, ip: `10.0.0.${ordinal + 1}`, running: true, ready: true, terminating: false, revision: 'rev-1', ...extra };
}

const answer = (backlog: number, selfState: MemberState | undefined): HintsAnswer => ({ backlog, selfState });

describe('readHints', () => {
  test('asks the Ready pods and the pod being removed even though it is not Ready', async () => {
    const admin = new ScriptedAdmin({ '10.0.0.1': answer(0, 'normal'), '10.0.0.2': answer(2, 'normal'), '10.0.0.4': answer(5, 'left') });
    const pods = [pod(0), pod(1), pod(2, { ready: false }), pod(3, { ready: false })];
    const hints = await readHints(admin, pods, 'kv-3');
    expect(hints).toEqual({ backlogs: { 'kv-0': 0, 'kv-1': 2, 'kv-3': 5 }, selfStates: { 'kv-0': 'normal', 'kv-1': 'normal', 'kv-3': 'left' } });
    // kv-2 is neither Ready nor being removed: not asked.
    expect(admin.asked.sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.4']);
  });

  test('without a scale-down only Ready pods are asked', async () => {
    const admin = new ScriptedAdmin({ '10.0.0.1': answer(0, 'normal') });
    const hints = await readHints(admin, [pod(0), pod(1, { ready: false })]);
    expect(hints.backlogs).toEqual({ 'kv-0': 0 });
  });

  test('a pod that does not answer counts as one hint and says nothing about itself; a pod without an IP is absent', async () => {
    const admin = new ScriptedAdmin({ '10.0.0.1': answer(0, 'normal'), '10.0.0.2': 'silent' });
    const hints = await readHints(admin, [pod(0), pod(1, { ready: false }), pod(2, { ready: false, ip: undefined, running: false })], 'kv-1');
    expect(hints).toEqual({ backlogs: { 'kv-0': 0, 'kv-1': 1 }, selfStates: { 'kv-0': 'normal' } });
    const removedWithoutIp = await readHints(admin, [pod(0), pod(2, { ready: false, ip: undefined, running: false })], 'kv-2');
    expect(removedWithoutIp.backlogs).toEqual({ 'kv-0': 0 });
  });
});

describe('NodeAdmin.hints decodes GET /v1/members', () => {
  afterEach(() => jest.restoreAllMocks());

  const members = (body: unknown) => jest.spyOn(globalThis, 'fetch').mockResolvedValue(new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } }));

  test('the backlog, and the state the node gives itself in its own member list', async () => {
    members({ self: 'kv-3', ringVersion: 9, members: [{ id: 'kv-0', state: 'normal' }, { id: 'kv-3', state: 'left' }], hintBacklog: 4 });
    expect(await new NodeAdmin('token').hints('10.0.0.4')).toEqual({ backlog: 4, selfState: 'left' });
  });

  test('a node that does not list itself has no state; an unknown state is not passed on', async () => {
    members({ self: 'kv-3', members: [{ id: 'kv-0', state: 'normal' }], hintBacklog: 0 });
    expect(await new NodeAdmin(undefined).hints('10.0.0.4')).toEqual({ backlog: 0, selfState: undefined });
    members({ self: 'kv-3', members: [{ id: 'kv-3', state: 'gone' }], hintBacklog: 0 });
    expect(await new NodeAdmin(undefined).hints('10.0.0.4')).toEqual({ backlog: 0, selfState: undefined });
  });

  test('a missing, negative or fractional backlog is refused (the caller then counts one hint)', async () => {
    for (const hintBacklog of [undefined, -1, 0.5, '3']) {
      members({ self: 'kv-3', members: [], hintBacklog });
      await expect(new NodeAdmin(undefined).hints('10.0.0.4')).rejects.toThrow('no hintBacklog');
    }
  });
});
