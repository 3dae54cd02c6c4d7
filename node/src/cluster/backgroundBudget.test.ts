/**
 * The background budget on virtual time: work goes at once on an idle node, waits while clients
 * keep the node busy (in-flight requests or event-loop lag), resumes when the load goes, and
 * still trickles through (one unit per interval) under load that never ends.
 */
import { BackgroundBudget, type BackgroundKind } from './backgroundBudget';
import { VirtualRuntime } from './virtualRuntime';

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
const OPTIONS = { inFlightHigh: 10, lagMsHigh: 50, sampleIntervalMs: 100, waitMsMin: 10, waitMsMax: 80, trickleIntervalMs: 1000 };

function setup() {
  const runtime = new VirtualRuntime(1);
  const load = { inFlight: 0 };
  const deferrals: { kind: BackgroundKind; waitedMs: number }[] = [];
  const budget = new BackgroundBudget(runtime, () => load.inFlight, OPTIONS, { deferred: (kind, waitedMs) => deferrals.push({ kind, waitedMs }) });
  /** Starts one admit and reports when it resolved (virtual ms), or undefined while it waits. */
  const track = (kind: BackgroundKind) => {
    const state: { atMs?: number } = {};
    void budget.admit(kind).then(() => {
      state.atMs = runtime.nowMs();
    });
    return state;
  };
  return { runtime, load, deferrals, budget, track };
}

test('an idle node admits background work at once and counts no deferral', async () => {
  const { runtime, deferrals, budget, track } = setup();
  const unit = track('hints');
  await settle();
  expect(unit.atMs).toBe(runtime.nowMs());
  expect(deferrals).toEqual([]);
  expect(budget.summary()).toMatchObject({ busy: null, admitted: { hints: 1 }, deferred: { hints: 0 } });
});

test('many client requests in flight hold background work back until they finish', async () => {
  const { runtime, load, deferrals, budget, track } = setup();
  await budget.admit('antiEntropy');
  load.inFlight = 10;
  expect(budget.busy()).toBe('10 client requests in flight');
  const startMs = runtime.nowMs();
  const unit = track('antiEntropy');
  await runtime.advanceBy(300, settle);
  expect(unit.atMs).toBeUndefined();
  load.inFlight = 2;
  await runtime.advanceBy(100, settle);
  expect(unit.atMs).toBeGreaterThan(startMs + 300);
  expect(unit.atMs).toBeLessThanOrEqual(startMs + 400);
  expect(deferrals).toEqual([{ kind: 'antiEntropy', waitedMs: unit.atMs! - startMs }]);
});

test('event-loop lag above the threshold holds background work back while clients wait; the smoothed lag fades', async () => {
  const { runtime, load, budget, track } = setup();
  await budget.admit('handoff');
  for (let i = 0; i < 5; i++) budget.recordLag(200);
  // Lag with no client waiting (a machine busy with other processes) holds nothing back.
  expect(budget.busy()).toBeUndefined();
  load.inFlight = 1;
  expect(budget.busy()).toMatch(/^event loop lag \d+ ms with 1 client requests in flight$/);
  const unit = track('handoff');
  await runtime.advanceBy(200, settle);
  expect(unit.atMs).toBeUndefined();
  for (let i = 0; i < 20 && budget.busy() !== undefined; i++) budget.recordLag(0);
  expect(budget.busy()).toBeUndefined();
  await runtime.advanceBy(100, settle);
  expect(unit.atMs).toBeDefined();
});

test('the lag timer measures how late it fires', async () => {
  const { runtime, budget } = setup();
  budget.start();
  // A virtual clock fires timers on time: no lag.
  await runtime.advanceBy(1000, settle);
  expect(budget.summary().eventLoopLagMs).toBe(0);
  budget.stop();
  expect(runtime.pendingTimers()).toBe(0);
});

test('under load that never ends each kind still gets one unit per trickle interval', async () => {
  const { runtime, load, budget, track } = setup();
  load.inFlight = 1000;
  const startMs = runtime.nowMs();
  const admittedAt: number[] = [];
  for (let i = 0; i < 3; i++) {
    const unit = track('hints');
    await runtime.advanceBy(1200, settle);
    expect(unit.atMs).toBeDefined();
    admittedAt.push(unit.atMs! - startMs);
  }
  // The first waits one interval from its request, each next one interval after the one before.
  expect(admittedAt[0]).toBeGreaterThanOrEqual(1000);
  expect(admittedAt[1]! - admittedAt[0]!).toBeGreaterThanOrEqual(1000);
  expect(admittedAt[2]! - admittedAt[1]!).toBeGreaterThanOrEqual(1000);
  // Kinds are independent: anti-entropy's trickle is not used up by hints.
  const other = track('antiEntropy');
  await runtime.advanceBy(1100, settle);
  expect(other.atMs).toBeDefined();
  expect(budget.summary().deferred).toEqual({ hints: 3, antiEntropy: 1, handoff: 0 });
});

test('nonsense options are refused', () => {
  expect(() => new BackgroundBudget(new VirtualRuntime(1), () => 0, { ...OPTIONS, waitMsMin: 0 })).toThrow(RangeError);
});
