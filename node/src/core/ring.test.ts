/** Ring changes, gossip merge convergence, and the phi-accrual detector. */
import fc from 'fast-check';
import { PhiAccrualDetector } from './phi';
import { addMember, claimant, compareDigests, createRing, mergeRings, ownershipShares, removeMember, ringDigest, type RingState } from './ring';

const member = (id: string) => ({ id, clientUrl: `http://${id}:8080`, peerUrl: `http://${id}:9080` });

function must(change: ReturnType<typeof addMember>): RingState {
  if (!change.ok) throw new Error(change.message);
  return change.ring;
}

describe('ring state', () => {
  test('joins and leaves bump the version and re-plan', () => {
    let ring = createRing('c1', member('n1'), 16, 3);
    ring = must(addMember(ring, member('n2')));
    ring = must(addMember(ring, member('n3')));
    expect(ring.version).toBe(3);
    expect(ring.plan.owners.every((o) => o.length === 3)).toBe(true);
    ring = must(addMember(ring, member('n4')));
    expect(Object.values(ownershipShares(ring)).every((s) => Math.abs(s - 0.25) < 0.02)).toBe(true);
    ring = must(removeMember(ring, 'n1'));
    expect(ring.plan.owners.every((o) => !o.includes('n1'))).toBe(true);
    expect(ring.members.find((m) => m.id === 'n1')?.state).toBe('left');
    expect(claimant(ring)).toBe('n2');
  });

  test('the same node joining again gets the ring unchanged (its first answer may have been lost)', () => {
    const ring = must(addMember(createRing('c1', member('n1'), 16, 3), member('n2')));
    const again = addMember(ring, member('n2'));
    expect(again.ok).toBe(true);
    expect(again.ok && again.ring).toBe(ring);
  });

  test('refusals are explicit', () => {
    const ring = createRing('c1', member('n1'), 16, 3);
    expect(removeMember(ring, 'n9')).toMatchObject({ ok: false, error: 'NOT_A_MEMBER' });
    expect(removeMember(ring, 'n1')).toMatchObject({ ok: false, error: 'LAST_MEMBER' });
  });

  test('gossip merge is order-independent: any exchange order converges on one ring', () => {
    const base = must(addMember(createRing('c1', member('n1'), 16, 3), member('n2')));
    const a = must(addMember(base, member('n3')));
    const b = must(addMember(base, member('n4'))); // a conflicting change at the same version
    const c = must(addMember(a, member('n5')));
    const states = [base, a, b, c];
    fc.assert(
      fc.property(fc.shuffledSubarray(states, { minLength: 4, maxLength: 4 }), (order) => {
        let acc = order[0]!;
        for (const next of order.slice(1)) {
          const r = mergeRings(acc, next);
          if ('error' in r) throw new Error('unexpected mismatch');
          acc = r.ring;
        }
        expect(acc).toEqual(c);
      }),
    );
  });

  test('digests order rings exactly as the merge does, so gossip can skip sending equal rings', () => {
    const base = must(addMember(createRing('c1', member('n1'), 16, 3), member('n2')));
    const a = must(addMember(base, member('n3')));
    const b = must(addMember(base, member('n4')));
    expect(compareDigests(ringDigest(base), ringDigest({ ...base }))).toBe(0);
    for (const [x, y] of [[base, a], [a, b], [b, a], [a, base]] as const) {
      const merged = mergeRings(x, y);
      if ('error' in merged) throw new Error('unexpected mismatch');
      // The merge takes the remote ring exactly when the remote digest is the newer one.
      expect(merged.changed).toBe(compareDigests(ringDigest(y), ringDigest(x)) > 0);
    }
  });

  test('rings of other clusters are refused', () => {
    const one = createRing('c1', member('n1'), 16, 3);
    expect(mergeRings(one, createRing('c2', member('n2'), 16, 3))).toEqual({ error: 'CONFIG_MISMATCH' });
    expect(mergeRings(one, { ...one, version: 9, partitionCount: 32 })).toEqual({ error: 'CONFIG_MISMATCH' });
  });
});

describe('phi accrual', () => {
  test('regular heartbeats keep phi low; silence raises it past the threshold', () => {
    const d = new PhiAccrualDetector();
    expect(d.isAvailable(0)).toBe(false);
    for (let t = 0; t <= 20000; t += 1000) d.heartbeat(t);
    expect(d.phi(20500)).toBeLessThan(1);
    expect(d.isAvailable(21000)).toBe(true);
    expect(d.isAvailable(40000)).toBe(false);
    expect(d.phi(40000)).toBeGreaterThan(d.phi(25000));
  });
});
