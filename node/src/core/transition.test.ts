import fc from 'fast-check';
import { addMember, createRing, type RingState } from './ring';
import { abortChange, beginJoin, beginLeave, completeTransfer, incomingOwners, isChangePendingMessage, mayDropPartition, waitingTransfers } from './transition';

const member = (id: string) => ({ id, clientUrl: `http://${id}:1`, peerUrl: `http://${id}:2` });

function must(change: ReturnType<typeof beginJoin>): RingState {
  if (!change.ok) throw new Error(change.message);
  return change.ring;
}

function ringOf(count: number, q: number, n: number): RingState {
  let ring = createRing('c', member('n1'), q, n);
  for (let i = 2; i <= count; i++) ring = must(addMember(ring, member(`n${i}`)));
  return ring;
}

/** Completes every waiting transfer in the given order. */
function finish(ring: RingState, order: (ids: string[]) => string[] = (ids) => ids): RingState {
  let next = ring;
  for (const id of order(waitingTransfers(ring).map((t) => t.id))) next = must(completeTransfer(next, id));
  return next;
}

function checkCommitted(ring: RingState): void {
  expect(ring.pending).toBeUndefined();
  const owners = ring.members.filter((m) => m.state === 'normal').map((m) => m.id);
  const width = Math.min(ring.replicationFactor, owners.length);
  for (const list of ring.plan.owners) {
    expect(new Set(list).size).toBe(width);
    for (const id of list) expect(owners).toContain(id);
  }
}

function activeOf(ring: RingState): number {
  return ring.members.filter((m) => m.state !== 'left').length;
}

function slots(ring: RingState): Set<string> {
  return new Set(ring.plan.owners.flatMap((list, p) => list.map((id) => `${p}/${id}`)));
}

describe('membership transitions with handoff', () => {
  it('a joining node that asks again (its answer was lost) gets the ring unchanged, mid-change too', () => {
    const joining = must(beginJoin(ringOf(3, 16, 3), member('n9')));
    const again = beginJoin(joining, member('n9'));
    expect(again.ok && again.ring).toBe(joining);
    // Another node still has to wait for the change in progress.
    expect(beginJoin(joining, member('n8'))).toMatchObject({ ok: false, error: 'CHANGE_PENDING' });
  });

  it('a join keeps the current plan until every transfer is done, then commits with N distinct owners', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.constantFrom(8, 16, 64), fc.integer({ min: 1, max: 3 }), fc.boolean(), (count, q, n, reverse) => {
        const before = ringOf(count, q, n);
        const joining = must(beginJoin(before, member('n9')));
        expect(joining.plan).toEqual(before.plan);
        expect(joining.members.find((m) => m.id === 'n9')?.state).toBe(joining.pending === undefined ? 'normal' : 'joining');
        const transfers = waitingTransfers(joining);
        const after = finish(joining, (ids) => (reverse ? [...ids].reverse() : ids));
        checkCommitted(after);
        // Transfers cover exactly the slots the change added.
        const added = [...slots(after)].filter((s) => !slots(before).has(s)).sort();
        expect(transfers.map((t) => `${t.partition}/${t.to}`).sort()).toEqual(added);
        for (const t of transfers) expect(before.plan.owners[t.partition]).toContain(t.from);
        expect(after.version).toBeGreaterThan(joining.version - 1);
      }),
    );
  });

  it('a leave sends from the leaving node, which becomes left only at commit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }), fc.constantFrom(8, 16, 64), fc.integer({ min: 1, max: 3 }), fc.nat(), (count, q, n, pick) => {
        const before = ringOf(count, q, n);
        const leaver = `n${(pick % count) + 1}`;
        const leaving = must(beginLeave(before, leaver));
        const transfers = waitingTransfers(leaving);
        if (transfers.length > 0) expect(leaving.members.find((m) => m.id === leaver)?.state).toBe('leaving');
        for (const t of transfers) {
          if (before.plan.owners[t.partition]!.includes(leaver)) expect(t.from).toBe(leaver);
          expect(incomingOwners(leaving, t.partition)).toContain(t.to);
        }
        const after = finish(leaving);
        checkCommitted(after);
        expect(after.members.find((m) => m.id === leaver)?.state).toBe('left');
        for (let p = 0; p < q; p++) expect(mayDropPartition(after, leaver, p)).toBe(true);
        const added = [...slots(after)].filter((s) => !slots(before).has(s)).sort();
        expect(transfers.map((t) => `${t.partition}/${t.to}`).sort()).toEqual(added);
      }),
    );
  });

  it('refuses a second change while one is pending, and ignores repeated completions', () => {
    const ring = must(beginJoin(ringOf(3, 16, 3), member('n4')));
    expect(ring.pending).toBeDefined();
    expect(beginJoin(ring, member('n5'))).toMatchObject({ ok: false, error: 'CHANGE_PENDING' });
    expect(beginLeave(ring, 'n1')).toMatchObject({ ok: false, error: 'CHANGE_PENDING' });
    const id = waitingTransfers(ring)[0]!.id;
    const once = must(completeTransfer(ring, id));
    expect(must(completeTransfer(once, id))).toBe(once);
    expect(must(completeTransfer(once, 'nope'))).toBe(once);
  });

  it('a refusal because a change is pending is recognisable by its message; others are not', () => {
    const ring = must(beginJoin(ringOf(3, 16, 3), member('n4')));
    const refused = beginLeave(ring, 'n2');
    expect(!refused.ok && isChangePendingMessage(refused.message)).toBe(true);
    const last = beginLeave(ringOf(1, 16, 3), 'n1');
    expect(!last.ok && isChangePendingMessage(last.message)).toBe(false);
  });

  it('an abort, at any point of a change, restores the committed plan with no member in between: joiners left, leavers normal', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 5 }), fc.constantFrom(8, 16), fc.integer({ min: 1, max: 3 }), fc.boolean(), fc.nat(), (count, q, n, join, done) => {
        const before = ringOf(count, q, n);
        const changing = must(join ? beginJoin(before, member('n9')) : beginLeave(before, `n${(done % count) + 1}`));
        if (changing.pending === undefined) return;
        // Some transfers finished already (but not all: the last one would commit).
        const ids = waitingTransfers(changing).map((t) => t.id);
        let partial = changing;
        for (const id of ids.slice(0, done % ids.length)) partial = must(completeTransfer(partial, id));
        const { ring: aborted, aborted: what } = abortChange(partial);
        expect(aborted.pending).toBeUndefined();
        expect(aborted.plan).toEqual(before.plan);
        expect(aborted.version).toBe(partial.version + 1);
        expect(aborted.members.filter((m) => m.state === 'joining' || m.state === 'leaving')).toEqual([]);
        expect(what).toEqual({ joining: join ? ['n9'] : [], leaving: join ? [] : [changing.members.find((m) => m.state === 'leaving')!.id], transfers: ids.length, transfersDone: done % ids.length });
        if (join) expect(aborted.members.find((m) => m.id === 'n9')?.state).toBe('left');
        // Whoever received a partition the committed plan does not give it may drop it again.
        for (const t of changing.pending.transfers) expect(mayDropPartition(aborted, t.to, t.partition)).toBe(!before.plan.owners[t.partition]!.includes(t.to));
        // The next change can begin, and an abort with nothing pending changes nothing.
        expect(beginLeave(aborted, 'n1').ok || activeOf(aborted) === 1).toBe(true);
        expect(abortChange(aborted)).toEqual({ ring: aborted, aborted: undefined });
      }),
    );
  });

  it('a receiver keeps its incoming partitions and an old owner may drop them only after commit', () => {
    const ring = must(beginJoin(ringOf(3, 16, 3), member('n4')));
    const t = waitingTransfers(ring)[0]!;
    expect(mayDropPartition(ring, t.to, t.partition)).toBe(false);
    expect(mayDropPartition(ring, t.from, t.partition)).toBe(false);
    const after = finish(ring);
    const dropper = ring.plan.owners[t.partition]!.find((id) => !after.plan.owners[t.partition]!.includes(id))!;
    expect(mayDropPartition(after, dropper, t.partition)).toBe(true);
    expect(mayDropPartition(after, t.to, t.partition)).toBe(false);
  });
});
