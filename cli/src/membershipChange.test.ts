/**
 * Join and leave retry only the refusal that clears by itself (another membership change still
 * in progress), with a progress line, until their deadline; abort answers are put in words.
 * Time and sleeping are faked, so the tests run instantly and exactly.
 */
import { DynamoError } from '../../client/src/index';
import { abortText, isChangePending, progressReporter, retryWhileChangePending } from './membershipChange';

const pending = () => new DynamoError('MEMBERSHIP_CONFLICT', 409, 'a membership change is in progress (3 of 8 transfers waiting); retry when it is done');

function fakeClock() {
  const clock = { nowMs: 0, sleeps: 0 };
  return { clock, nowMs: () => clock.nowMs, sleep: async (ms: number) => void ((clock.nowMs += ms), clock.sleeps++) };
}

test('retries while another change is in progress, then succeeds; the progress line shows what it waits for', async () => {
  const { clock, nowMs, sleep } = fakeClock();
  const lines: string[] = [];
  const stream = { write: (text: string) => lines.push(text) } as unknown as NodeJS.WritableStream;
  const progress = progressReporter(stream, 'join');
  let attempts = 0;
  const result = await retryWhileChangePending(
    async () => {
      if (++attempts < 4) throw pending();
      return 'joined';
    },
    { timeoutMs: 60_000, onWaiting: progress.onWaiting, nowMs, sleep },
  );
  expect([result, attempts, clock.sleeps, clock.nowMs]).toEqual(['joined', 4, 3, 6000]);
  // Into a pipe, the same line is written once, not once per attempt.
  expect(lines).toEqual(['join: waiting for the membership change in progress (3 of 8 transfers waiting)\n']);
});

test('gives up with the last refusal at its deadline, and never retries other errors', async () => {
  const { clock, nowMs, sleep } = fakeClock();
  await expect(retryWhileChangePending(async () => Promise.reject(pending()), { timeoutMs: 5000, onWaiting: () => undefined, nowMs, sleep })).rejects.toThrow(/membership change is in progress/);
  expect(clock.nowMs).toBeLessThanOrEqual(5000);
  let attempts = 0;
  const other = new DynamoError('MEMBERSHIP_CONFLICT', 409, 'n2 is already a member');
  const refuse = async () => {
    attempts++;
    throw other;
  };
  await expect(retryWhileChangePending(refuse, { timeoutMs: 60_000, onWaiting: () => undefined, nowMs, sleep })).rejects.toBe(other);
  expect(attempts).toBe(1);
  expect([isChangePending(pending()), isChangePending(other), isChangePending(new Error('a membership change is in progress'))]).toEqual([true, false, false]);
  // --timeout-s 0: one attempt, no wait.
  const before = clock.sleeps;
  await expect(retryWhileChangePending(async () => Promise.reject(pending()), { timeoutMs: 0, onWaiting: () => undefined, nowMs, sleep })).rejects.toThrow();
  expect(clock.sleeps).toBe(before);
});

test('an abort is described by what it dropped, or says that nothing was pending', () => {
  expect(abortText({ aborted: null, raw: {} })).toBe('no membership change was pending; nothing changed\n');
  const text = abortText({ aborted: { joining: ['n4'], leaving: [], transfers: 12, transfersDone: 5 }, raw: {} });
  expect(text).toMatch(/^aborted the join of n4 \(5 of 12 transfers had finished\)\n/);
  expect(text).toMatch(/the joining nodes are now "left"/);
});
