/**
 * The admission rule with a fake clock and made-up delay samples. When the node is overloaded:
 * a burst above the target shorter than the interval is not; a standing delay is after one
 * interval, and so is one stall longer than target + interval; one sample under the target ends
 * it; delays back within an interval of that restart it at once. What it does: every overloaded
 * sample cuts the in-flight limit by a tenth (down to a floor), every sample under the target
 * raises it by a fiftieth (at least one, up to the maximum), and arrivals at or above the limit are
 * refused. A property test checks the detection against a direct reading of the rule over the
 * whole history, and the limit's bounds, over random sample sequences.
 */
import fc from 'fast-check';
import { IN_FLIGHT_LIMIT_MIN, QueueDelayGovernor, queueDelayLimitsProblem, type QueueDelayLimits } from './admission';

const LIMITS: QueueDelayLimits = { targetDelayMs: 10, intervalMs: 100, inFlightMax: 1000 };

/** Feeds `[atMs, delayMs]` samples and returns whether the node is overloaded after each. */
function overloadedAfter(samples: readonly (readonly [number, number])[], limits = LIMITS): boolean[] {
  const governor = new QueueDelayGovernor(limits);
  return samples.map(([atMs, delayMs]) => {
    governor.observe(delayMs, atMs);
    return governor.state().overloaded;
  });
}

test('delays under the target never overload the node, and it admits up to the maximum', () => {
  const governor = new QueueDelayGovernor(LIMITS);
  for (const [atMs, delayMs] of [[0, 0], [10, 9], [20, 5], [500, 9.9]] as const) governor.observe(delayMs, atMs);
  expect(governor.state()).toEqual({ queueDelayMs: 9.9, overloaded: false, inFlightLimit: 1000 });
  expect(governor.refuses(999)).toBe(false);
  expect(governor.refuses(1000)).toBe(true);
});

test('a burst above the target shorter than the interval does not overload the node', () => {
  expect(overloadedAfter([[0, 20], [40, 20], [89, 20], [110, 2]])).toEqual([false, false, false, false]);
});

test('delays at or above the target for a whole interval do, and one sample under it ends it', () => {
  expect(overloadedAfter([[0, 10], [50, 10], [99, 10], [100, 10], [120, 60], [130, 3]])).toEqual([false, false, false, true, true, false]);
});

test('one stall longer than target + interval is a standing queue by itself', () => {
  // 150 ms late: requests have waited past the 10 ms target for the last 140 ms.
  expect(overloadedAfter([[1000, 150]])).toEqual([true]);
  // 100 ms late: only 90 ms past the target; a later sample completes the interval.
  expect(overloadedAfter([[1000, 100], [1010, 20]])).toEqual([false, true]);
});

test('an overload back within an interval of the last one restarts at once; after a quiet interval it waits again', () => {
  expect(overloadedAfter([[0, 20], [100, 20], [150, 1], [200, 25], [210, 1], [300, 1], [400, 10], [499, 10], [500, 10]])).toEqual([
    false, true, false, true, false, false, false, false, true,
  ]);
});

test('overloaded samples cut the limit by a tenth down to a floor; samples under the target raise it back to the maximum', () => {
  const governor = new QueueDelayGovernor(LIMITS);
  governor.observe(200, 1000); // a 200 ms stall: overloaded at once
  expect(governor.state().inFlightLimit).toBe(900);
  governor.observe(50, 1010);
  expect(governor.state().inFlightLimit).toBe(810);
  expect(governor.refuses(809)).toBe(false);
  expect(governor.refuses(810)).toBe(true);
  for (let i = 0; i < 200; i++) governor.observe(50, 1020 + i * 10);
  expect(governor.state().inFlightLimit).toBe(IN_FLIGHT_LIMIT_MIN);
  // Under the target: +1 while a fiftieth is less than one, then +2 %, capped at the maximum.
  governor.observe(1, 5000);
  expect(governor.state()).toEqual({ queueDelayMs: 1, overloaded: false, inFlightLimit: IN_FLIGHT_LIMIT_MIN + 1 });
  for (let i = 1; i <= 1000; i++) governor.observe(1, 5000 + i * 10);
  expect(governor.state().inFlightLimit).toBe(1000);
});

test('a maximum below the floor is the floor', () => {
  const governor = new QueueDelayGovernor({ ...LIMITS, inFlightMax: 2 });
  governor.observe(500, 0);
  expect(governor.state().inFlightLimit).toBe(2);
});

test('limits are checked', () => {
  expect(queueDelayLimitsProblem(LIMITS)).toBeUndefined();
  expect(queueDelayLimitsProblem({ ...LIMITS, targetDelayMs: 0 })).toMatch(/targetDelayMs/);
  expect(queueDelayLimitsProblem({ ...LIMITS, intervalMs: Number.NaN })).toMatch(/intervalMs/);
  expect(queueDelayLimitsProblem({ ...LIMITS, inFlightMax: 0 })).toMatch(/inFlightMax/);
  expect(() => new QueueDelayGovernor({ ...LIMITS, intervalMs: -1 })).toThrow(RangeError);
});

test('property: overload follows the rule read directly off the whole history; the limit stays in bounds and moves the right way', () => {
  const samples = fc.array(fc.tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 30 })), { maxLength: 200 });
  fc.assert(
    fc.property(samples, fc.integer({ min: 1, max: 2000 }), (steps, inFlightMax) => {
      const limits = { ...LIMITS, inFlightMax };
      const governor = new QueueDelayGovernor(limits);
      let nowMs = 0;
      const history: { atMs: number; startedMs: number; above: boolean; overloaded: boolean }[] = [];
      for (const [gapMs, delayMs] of steps) {
        nowMs += gapMs;
        const limitBefore = governor.state().inFlightLimit;
        governor.observe(delayMs, nowMs);
        const above = delayMs >= limits.targetDelayMs;
        const startedMs = nowMs - delayMs + limits.targetDelayMs;
        // Directly: overloaded iff above now and either it already was, or the run of samples
        // above the target ending now reaches back an interval (each sample counting from when
        // its own delay passed the target), or the last overload ended less than an interval ago.
        let expected = false;
        if (above) {
          let runStartMs = startedMs;
          for (let i = history.length - 1; i >= 0 && history[i]!.above; i--) runStartMs = Math.min(runStartMs, history[i]!.startedMs);
          const lastEnd = [...history.keys()].reverse().find((i) => !history[i]!.above && i > 0 && history[i - 1]!.overloaded);
          const endedRecently = lastEnd !== undefined && nowMs - history[lastEnd]!.atMs < limits.intervalMs;
          expected = history.at(-1)?.overloaded === true || nowMs - runStartMs >= limits.intervalMs || endedRecently;
        }
        history.push({ atMs: nowMs, startedMs, above, overloaded: expected });
        const after = governor.state();
        expect(after.overloaded).toBe(expected);
        expect(after.inFlightLimit).toBeGreaterThanOrEqual(Math.min(IN_FLIGHT_LIMIT_MIN, inFlightMax));
        expect(after.inFlightLimit).toBeLessThanOrEqual(inFlightMax);
        if (expected) expect(after.inFlightLimit).toBeLessThanOrEqual(limitBefore);
        else if (!above) expect(after.inFlightLimit).toBeGreaterThanOrEqual(limitBefore);
        else expect(after.inFlightLimit).toBe(limitBefore);
      }
    }),
  );
});
