/**
 * Placement properties: plans are deterministic and balanced, every partition has N distinct
 * owners, and one join or leave moves exactly the slots that must move and no others.
 */
import fc from 'fast-check';
import { hashKey, murmur3, ownershipCounts, partitionOf, planRing, planTransfers, preferenceList, type RingPlan } from './partition';

const qArb = fc.constantFrom(8, 16, 64, 256);
const membersArb = fc.uniqueArray(fc.stringMatching(/^n[0-9]{1,3}$/), { minLength: 1, maxLength: 12 });

function slots(plan: RingPlan): number {
  return plan.owners.reduce((sum, list) => sum + list.length, 0);
}

function assertBalanced(plan: RingPlan, members: string[]): void {
  const width = Math.min(plan.replicationFactor, members.length);
  for (const list of plan.owners) {
    expect(list).toHaveLength(width);
    expect(new Set(list).size).toBe(width);
    for (const node of list) expect(members).toContain(node);
  }
  const mean = slots(plan) / members.length;
  const counts = ownershipCounts(plan);
  for (const node of members) {
    const c = counts.get(node) ?? 0;
    expect(c).toBeGreaterThanOrEqual(Math.floor(mean));
    expect(c).toBeLessThanOrEqual(Math.ceil(mean));
  }
}

function movedSlots(before: RingPlan, after: RingPlan): number {
  return planTransfers(before, after).length;
}

/** Builds a plan the way a cluster does: from the first member, adding the rest one at a time. */
function grow(members: string[], q: number, n: number): RingPlan {
  let plan = planRing(undefined, members.slice(0, 1), q, n);
  for (let i = 2; i <= members.length; i++) plan = planRing(plan, members.slice(0, i), q, n);
  return plan;
}

describe('hashing', () => {
  test('murmur3 matches the reference vectors', () => {
    const enc = new TextEncoder();
    expect(murmur3(new Uint8Array(0))).toBe(0);
    expect(murmur3(new Uint8Array(0), 1)).toBe(0x514e28b7);
    expect(murmur3(enc.encode('hello'))).toBe(0x248bfa47);
    expect(murmur3(enc.encode('The quick brown fox jumps over the lazy dog'))).toBe(0x2e4ff723);
  });

  test('the bucket is length-prefixed so different splits hash apart', () => {
    expect(hashKey('ab', 'c')).not.toBe(hashKey('a', 'bc'));
  });

  test('keys spread evenly over partitions', () => {
    const q = 64;
    const counts = new Array<number>(q).fill(0);
    for (let i = 0; i < 64000; i++) counts[partitionOf('users', `user-${i}`, q)]!++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(200);
  });
});

describe('ring plan', () => {
  test('initial plans are deterministic and balanced with N distinct owners', () => {
    fc.assert(
      fc.property(membersArb, qArb, fc.integer({ min: 1, max: 5 }), (members, q, n) => {
        const plan = planRing(undefined, members, q, n);
        expect(planRing(undefined, [...members].reverse(), q, n)).toEqual(plan);
        assertBalanced(plan, members);
      }),
    );
  });

  test('one join moves only the slots the new member takes, and stays balanced', () => {
    fc.assert(
      fc.property(membersArb, qArb, fc.integer({ min: 1, max: 4 }), (members, q, n) => {
        fc.pre(members.length >= 2);
        const before = grow(members.slice(0, -1), q, n);
        const after = planRing(before, members, q, n);
        assertBalanced(after, members);
        const joiner = members[members.length - 1]!;
        const taken = ownershipCounts(after).get(joiner) ?? 0;
        expect(movedSlots(before, after)).toBe(taken);
        expect(planTransfers(before, after).every((t) => t.to === joiner)).toBe(true);
        expect(planRing(before, members, q, n)).toEqual(after);
      }),
    );
  });

  // A leave must re-home every slot of the leaver. Sometimes balance also needs a few extra
  // moves: when the leaver shared many partitions with one node, that node cannot take those
  // slots (owners are distinct), so it must be evened out elsewhere. The planner first tries
  // chains of moves that only re-route the leaver's slots; this bounds what is left.
  test('one leave moves the slots the leaver held plus at most a quarter more, and stays balanced', () => {
    fc.assert(
      fc.property(membersArb, qArb, fc.integer({ min: 1, max: 4 }), fc.nat(), (members, q, n, pick) => {
        fc.pre(members.length >= 2);
        const before = grow(members, q, n);
        const leaver = members[pick % members.length]!;
        const rest = members.filter((m) => m !== leaver);
        const after = planRing(before, rest, q, n);
        assertBalanced(after, rest);
        const held = ownershipCounts(before).get(leaver) ?? 0;
        const refilled = members.length > n ? held : 0;
        const moved = movedSlots(before, after);
        expect(moved).toBeGreaterThanOrEqual(refilled);
        expect(moved).toBeLessThanOrEqual(refilled + Math.ceil(refilled / 4));
        for (const t of planTransfers(before, after)) expect(rest).toContain(t.to);
      }),
    );
  });

  test('preference lists name N owners, then every other member once, in a stable order', () => {
    const members = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const plan = planRing(undefined, members, 16, 3);
    for (let p = 0; p < 16; p++) {
      const list = preferenceList(plan, p, members);
      expect(list.primaries).toEqual(plan.owners[p]);
      expect([...list.primaries, ...list.fallbacks].sort()).toEqual(members);
      expect(preferenceList(plan, p, [...members].reverse())).toEqual(list);
    }
  });

  test('a member that is down in the caller view is left out of the primaries', () => {
    const plan = planRing(undefined, ['n1', 'n2', 'n3', 'n4'], 8, 3);
    const owners = plan.owners[0]!;
    const list = preferenceList(plan, 0, ['n1', 'n2', 'n3', 'n4'].filter((n) => n !== owners[0]));
    expect(list.primaries).toEqual(owners.slice(1));
  });

  test('bad inputs are refused', () => {
    expect(() => planRing(undefined, ['a'], 12, 3)).toThrow(/power of two/);
    expect(() => planRing(undefined, [], 8, 3)).toThrow(/at least one/);
    expect(() => planRing(undefined, ['a', 'a'], 8, 3)).toThrow(/distinct/);
    const plan = planRing(undefined, ['a'], 8, 3);
    expect(() => planRing(plan, ['a', 'b'], 16, 3)).toThrow(/fixed/);
  });
});
