/**
 * The reaping rules of core/tombstones.ts: a tombstone goes only when it is old, its partition
 * is stable, every member is up and every member holds exactly it or nothing. The property test
 * builds random replica states from writes, deletes and merges and checks the point of the
 * rules: whenever a reap is allowed, no member holds a value the tombstone superseded, so no
 * later repair can bring one back.
 */
import fc from 'fast-check';
import { EMPTY_OBJECT, covers, liveSiblings, merge, update } from './dvv';
import { addMember, createRing, type RingState } from './ring';
import { membersToConfirm, partitionBlocker, reapVerdict, tombstoneOldEnough, worthCopyingToEmptyReplica, type ReplicaAnswer } from './tombstones';
import { beginJoin } from './transition';
import type { NewValue, VersionedObject } from './version';

const opts = { conflictMode: 'siblings' as const, maxSiblings: 1000 };
const GRACE_MS = 1000;
const value = (text: string, ms: number, deleted = false): NewValue => ({ value: new TextEncoder().encode(text), contentType: 'text/plain', lastModifiedMs: ms, deleted });
const member = (id: string) => ({ id, clientUrl: `http://${id}:1`, peerUrl: `http://${id}:2` });

function ringOf(count: number): RingState {
  let ring = createRing('c', member('n1'), 8, 3);
  for (let i = 2; i <= count; i++) {
    const change = addMember(ring, member(`n${i}`));
    if (!change.ok) throw new Error(change.message);
    ring = change.ring;
  }
  return ring;
}

describe('tombstone age', () => {
  const written = update(EMPTY_OBJECT, {}, 'a', value('v', 0), opts).object;
  const deleted = update(written, written.context, 'a', value('', 100, true), opts).object;

  test('only a delete whose every sibling is older than the grace period is old enough', () => {
    expect(tombstoneOldEnough(written, 10_000, GRACE_MS)).toBe(false);
    expect(tombstoneOldEnough(deleted, 100 + GRACE_MS - 1, GRACE_MS)).toBe(false);
    expect(tombstoneOldEnough(deleted, 100 + GRACE_MS, GRACE_MS)).toBe(true);
    // Two concurrent deletes: the newer one sets the age.
    const twin = merge(deleted, update(written, written.context, 'b', value('', 5000, true), opts).object, opts);
    expect(tombstoneOldEnough(twin, 100 + GRACE_MS, GRACE_MS)).toBe(false);
    expect(tombstoneOldEnough(twin, 5000 + GRACE_MS, GRACE_MS)).toBe(true);
  });

  test('a delete beside a live sibling is no tombstone', () => {
    const concurrent = merge(deleted, update(written, {}, 'b', value('w', 50), opts).object, opts);
    expect(tombstoneOldEnough(concurrent, 1_000_000, GRACE_MS)).toBe(false);
    expect(reapVerdict(concurrent, [], [], 1_000_000, GRACE_MS)).toEqual({ reap: false, blocker: 'not-a-tombstone' });
  });

  test('repairs do not copy an old tombstone to a replica without the key, but do copy a young one', () => {
    expect(worthCopyingToEmptyReplica(deleted, 100 + GRACE_MS, GRACE_MS)).toBe(false);
    expect(worthCopyingToEmptyReplica(deleted, 100, GRACE_MS)).toBe(true);
    expect(worthCopyingToEmptyReplica(written, 1_000_000, GRACE_MS)).toBe(true);
    expect(worthCopyingToEmptyReplica(deleted, 1_000_000, undefined)).toBe(true);
  });
});

describe('reap verdict of one key', () => {
  const written = update(EMPTY_OBJECT, {}, 'a', value('v', 0), opts).object;
  const tombstone = update(written, written.context, 'a', value('', 0, true), opts).object;
  const later = GRACE_MS;

  test('reaps when every expected member holds the same tombstone or nothing', () => {
    const answers: ReplicaAnswer[] = [
      { node: 'n2', object: tombstone },
      { node: 'n3', object: undefined },
    ];
    expect(reapVerdict(tombstone, answers, ['n2', 'n3'], later, GRACE_MS)).toEqual({ reap: true });
  });

  test('a member holding the old value, a newer state, or no answer blocks the reap', () => {
    const newer = update(tombstone, tombstone.context, 'b', value('again', 10), opts).object;
    expect(reapVerdict(tombstone, [{ node: 'n2', object: written }], ['n2'], later, GRACE_MS)).toEqual({ reap: false, blocker: 'replica-differs' });
    expect(reapVerdict(tombstone, [{ node: 'n2', object: newer }], ['n2'], later, GRACE_MS)).toEqual({ reap: false, blocker: 'replica-differs' });
    expect(reapVerdict(tombstone, [{ node: 'n2', failed: true }], ['n2'], later, GRACE_MS)).toEqual({ reap: false, blocker: 'replica-unanswered' });
    expect(reapVerdict(tombstone, [], ['n2'], later, GRACE_MS)).toEqual({ reap: false, blocker: 'replica-unanswered' });
    expect(reapVerdict(tombstone, [{ node: 'n2', object: tombstone }], ['n2'], later - 1, GRACE_MS)).toEqual({ reap: false, blocker: 'within-grace' });
  });
});

describe('partition blockers', () => {
  const ring = ringOf(4);
  const up = () => true;

  test('only owners of a stable partition with every member up may reap', () => {
    const owned = ring.plan.owners.findIndex((owners) => owners.includes('n1'));
    const notOwned = ring.plan.owners.findIndex((owners) => !owners.includes('n1'));
    expect(partitionBlocker(ring, 'n1', owned, up)).toBeUndefined();
    expect(partitionBlocker(ring, 'n1', notOwned, up)).toBe('not-an-owner');
    expect(partitionBlocker(ring, 'n1', owned, (id) => id !== 'n4')).toBe('member-down');
    expect(membersToConfirm(ring, 'n1')).toEqual(['n2', 'n3', 'n4']);
  });

  test('a pending change blocks exactly the partitions it moves', () => {
    const change = beginJoin(ring, member('n5'));
    if (!change.ok) throw new Error(change.message);
    const pending = change.ring;
    const moved = new Set(pending.pending!.transfers.map((t) => t.partition));
    for (let p = 0; p < pending.partitionCount; p++) {
      const owner = pending.plan.owners[p]![0]!;
      // The joiner is an active member too: it must be up for anything to be reaped.
      expect([p, partitionBlocker(pending, owner, p, up)]).toEqual([p, moved.has(p) ? 'change-pending' : undefined]);
    }
    expect(membersToConfirm(pending, 'n1')).toContain('n5');
  });
});

/** Random histories over three replicas: writes with or without a context, deletes, merges. */
const stepArb = fc.record({ kind: fc.constantFrom('write', 'delete', 'sync'), at: fc.nat(2), from: fc.nat(2) });

function runHistory(steps: { kind: string; at: number; from: number }[]): VersionedObject[] {
  const replicas: (VersionedObject | undefined)[] = [undefined, undefined, undefined];
  steps.forEach((step, i) => {
    const at = replicas[step.at] ?? EMPTY_OBJECT;
    const from = replicas[step.from];
    if (step.kind === 'sync') {
      if (from !== undefined) replicas[step.at] = merge(at, from, opts);
      return;
    }
    const context = from?.context ?? {};
    replicas[step.at] = update(at, context, `r${step.at}`, value(`v${i}`, i, step.kind === 'delete'), opts).object;
  });
  return replicas.map((r) => r ?? EMPTY_OBJECT);
}

test('whenever a reap is allowed, no member holds a value the tombstone superseded', () => {
  let reaps = 0;
  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 30 }), fc.nat(2), (steps, self) => {
      const states = runHistory(steps);
      const local = states[self]!;
      const others = states.map((object, i) => ({ node: `r${i}`, object: object.siblings.length === 0 ? undefined : object })).filter((_, i) => i !== self);
      const verdict = reapVerdict(local, others, others.map((o) => o.node), 1_000_000, GRACE_MS);
      if (!verdict.reap) return;
      reaps++;
      for (const other of others) {
        const superseded = liveSiblings(other.object ?? EMPTY_OBJECT).filter((s) => covers(local.context, s.dot));
        expect(superseded).toEqual([]);
      }
    }),
    { numRuns: 500 },
  );
  // The histories must reach the interesting case often enough for the property to mean something.
  expect(reaps).toBeGreaterThan(10);
});
