/**
 * Leader election decisions: a held lease is respected for its duration as measured on the
 * candidate's own clock from when it last saw the record change; a released one is taken at once;
 * the leader renews without counting a transition.
 */
import { INITIAL_MEMORY, leaseStep, microTime, releasedRecord } from './lease';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

test('no lease: create one held by us', () => {
  const { step } = leaseStep(undefined, INITIAL_MEMORY, 'a', 15, T0);
  expect(step).toEqual({ kind: 'create', record: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: microTime(T0), renewTime: microTime(T0), leaseTransitions: 0 } });
});

test("another holder's lease is respected until it has not changed for a whole duration", () => {
  const held = { holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: microTime(T0 - 60_000), leaseTransitions: 3 };
  // The renewTime is a minute old by our clock, but we have only just seen the record: wait.
  const first = leaseStep(held, INITIAL_MEMORY, 'a', 15, T0);
  expect(first.step).toEqual({ kind: 'wait', holder: 'b', expiresInMs: 15_000 });
  const later = leaseStep(held, first.memory, 'a', 15, T0 + 14_000);
  expect(later.step.kind).toBe('wait');
  const expired = leaseStep(held, later.memory, 'a', 15, T0 + 15_001);
  expect(expired.step).toMatchObject({ kind: 'update', acquiring: true, record: { holderIdentity: 'a', leaseTransitions: 4 } });
});

test('a renewal by the holder restarts the wait', () => {
  const held = { holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: microTime(T0) };
  const first = leaseStep(held, INITIAL_MEMORY, 'a', 15, T0);
  const renewed = { ...held, renewTime: microTime(T0 + 10_000) };
  const second = leaseStep(renewed, first.memory, 'a', 15, T0 + 20_000);
  expect(second.step).toEqual({ kind: 'wait', holder: 'b', expiresInMs: 15_000 });
});

test('a released lease is taken at once', () => {
  const released = releasedRecord({ holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: microTime(T0), leaseTransitions: 1 }, T0);
  expect(released.holderIdentity).toBe('');
  const { step } = leaseStep(released, INITIAL_MEMORY, 'a', 15, T0 + 1);
  expect(step).toMatchObject({ kind: 'update', acquiring: true, record: { holderIdentity: 'a' } });
});

test('the holder renews, keeping its acquire time and the transition count', () => {
  const mine = { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: microTime(T0), renewTime: microTime(T0), leaseTransitions: 2 };
  const { step } = leaseStep(mine, INITIAL_MEMORY, 'a', 15, T0 + 2_000);
  expect(step).toEqual({ kind: 'update', acquiring: false, record: { ...mine, renewTime: microTime(T0 + 2_000) } });
});

test('MicroTime has six fractional digits', () => {
  expect(microTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toBe('2026-01-02T03:04:05.678000Z');
});
