/**
 * The work queue's promises: one handler per key at a time, coalesced adds, back-off after
 * failures that events cannot bypass, a bound on waiting keys, and requeue-after. A fake clock
 * drives time, so nothing here sleeps or measures durations.
 */
import { WorkQueue, type Clock } from './workQueue';

class FakeClock implements Clock {
  now = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  nowMs(): number {
    return this.now;
  }
  setTimer(fn: () => void, delayMs: number): () => void {
    const timer = { at: this.now + delayMs, fn, live: true };
    this.timers.push(timer);
    return () => (timer.live = false);
  }
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await settle();
      const next = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (next === undefined) break;
      this.now = next.at;
      next.live = false;
      next.fn();
    }
    this.now = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function deferred() {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
}

function queueWith(handle: (key: string) => Promise<number | undefined>, clock: FakeClock, extra: Partial<ConstructorParameters<typeof WorkQueue>[0]> = {}) {
  const errors: { key: string; retryInMs: number }[] = [];
  const queue = new WorkQueue({
    handle, concurrency: 2, keysMax: 100, backoffMsMin: 100, backoffMsMax: 1_000, clock,
    onError: (key, _error, retryInMs) => errors.push({ key, retryInMs }), ...extra,
  });
  return { queue, errors };
}

test('a key is never handled twice at once; an add while it runs runs it once more afterwards', async () => {
  const clock = new FakeClock();
  const gate = deferred();
  let running = 0;
  let maxRunning = 0;
  let calls = 0;
  const { queue } = queueWith(async () => {
    calls++;
    running++;
    maxRunning = Math.max(maxRunning, running);
    if (calls === 1) await gate.promise;
    running--;
    return undefined;
  }, clock);
  queue.add('db/kv');
  await settle();
  queue.add('db/kv');
  queue.add('db/kv');
  await settle();
  expect(calls).toBe(1);
  gate.release();
  await clock.advance(0);
  expect(calls).toBe(2);
  expect(maxRunning).toBe(1);
});

test('adds of a waiting key coalesce at the earliest time asked for', async () => {
  const clock = new FakeClock();
  const handled: string[] = [];
  const { queue } = queueWith(async (key) => {
    handled.push(key);
    return undefined;
  }, clock);
  queue.add('a', 5_000);
  queue.add('a', 1_000);
  queue.add('a', 3_000);
  await clock.advance(999);
  expect(handled).toEqual([]);
  await clock.advance(1);
  expect(handled).toEqual(['a']);
  await clock.advance(10_000);
  expect(handled).toEqual(['a']);
});

test('failures back off, doubling to the cap, and events do not bypass the back-off', async () => {
  const clock = new FakeClock();
  let calls = 0;
  const { queue, errors } = queueWith(async () => {
    calls++;
    throw new Error('API server unavailable');
  }, clock);
  queue.add('a');
  await clock.advance(0);
  expect(errors.map((e) => e.retryInMs)).toEqual([100]);
  queue.add('a'); // A watch event during the back-off.
  await clock.advance(50);
  expect(calls).toBe(1);
  await clock.advance(50);
  expect(calls).toBe(2);
  await clock.advance(200 + 400 + 800 + 999);
  expect(errors.map((e) => e.retryInMs)).toEqual([100, 200, 400, 800, 1_000]);
  await queue.stop();
});

test('a success resets the back-off and the handler chooses when to look again', async () => {
  const clock = new FakeClock();
  const results: Array<'fail' | number> = ['fail', 'fail', 2_000];
  let calls = 0;
  const { queue, errors } = queueWith(async () => {
    const next = results[calls++];
    if (next === 'fail') throw new Error('boom');
    return next;
  }, clock);
  queue.add('a');
  await clock.advance(100 + 200);
  expect(calls).toBe(3);
  await clock.advance(1_999);
  expect(calls).toBe(3);
  results.push('fail');
  await clock.advance(1);
  expect(calls).toBe(4);
  expect(errors.map((e) => e.retryInMs)).toEqual([100, 200, 100]);
  await queue.stop();
});

test('at most keysMax keys wait; more are dropped and reported', async () => {
  const clock = new FakeClock();
  const dropped: string[] = [];
  const { queue } = queueWith(async () => undefined, clock, { keysMax: 2, onDrop: (key) => dropped.push(key) });
  queue.add('a', 1_000);
  queue.add('b', 1_000);
  queue.add('c', 1_000);
  queue.add('a', 10);
  expect(queue.size).toBe(2);
  expect(dropped).toEqual(['c']);
  await queue.stop();
});
