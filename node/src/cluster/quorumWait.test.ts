/**
 * awaitQuorum with hand-settled promises and a simple "k answers" outcome: it decides at the
 * first answer that meets or dooms the quorum, never later, never earlier; answers after the
 * decision leave the result alone; failures are quoted in the error.
 */
import { awaitQuorum, CoordinationError, type OutstandingCall } from './quorumWait';

interface Hand {
  readonly call: OutstandingCall<string>;
  resolve(value: string): void;
  reject(error: Error): void;
}

function hand(primary = true): Hand {
  let resolve!: (value: string) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<string>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { call: { primary, promise }, resolve, reject };
}

/** Met after `k` answers; failed once fewer than `k` can still come. */
function kOf(k: number) {
  return (done: string[], pending: boolean[]): 'pending' | 'met' | 'failed' => (done.length >= k ? 'met' : done.length + pending.length < k ? 'failed' : 'pending');
}

/** Whether `promise` has settled after the pending microtasks ran. */
async function settledYet(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

test('resolves at the k-th answer, with the answers in arrival order, and later answers do not change it', async () => {
  const calls = [hand(), hand(), hand()];
  const waiting = awaitQuorum(calls.map((c) => c.call), kOf(2), (result) => result);
  calls[2]!.resolve('c');
  expect(await settledYet(waiting)).toBe(false);
  calls[0]!.resolve('a');
  const result = await waiting;
  expect(result).toEqual(['c', 'a']);
  calls[1]!.resolve('b');
  await new Promise((resolve) => setImmediate(resolve));
  expect(result).toEqual(['c', 'a']);
});

test('rejects as soon as the quorum cannot be met, quoting the failures, without waiting for the rest', async () => {
  const calls = [hand(), hand(), hand()];
  const waiting = awaitQuorum(calls.map((c) => c.call), kOf(2), (result) => result);
  calls[0]!.reject(new Error('n1 refused'));
  expect(await settledYet(waiting)).toBe(false);
  calls[1]!.reject(new Error('n2 timed out'));
  await expect(waiting).rejects.toThrow(CoordinationError);
  await expect(waiting).rejects.toMatchObject({ code: 'QUORUM_UNAVAILABLE', message: 'quorum not reached: n1 refused; n2 timed out' });
});

test('the outcome sees which calls are still pending and to primaries', async () => {
  const seen: boolean[][] = [];
  const calls = [hand(true), hand(false)];
  const waiting = awaitQuorum(calls.map((c) => c.call), (done: string[], pending: boolean[]) => {
    seen.push([...pending]);
    return done.length === 2 ? 'met' : 'pending';
  }, (result) => result);
  calls[0]!.resolve('primary');
  calls[1]!.resolve('fallback');
  await waiting;
  expect(seen).toEqual([[true, false], [false], []]);
});

test('met or failed before any answer decides at once; no calls and nothing met is a failure', async () => {
  await expect(awaitQuorum([hand().call], () => 'met', (r: string) => r)).resolves.toEqual([]);
  await expect(awaitQuorum([hand().call], () => 'failed', (r: string) => r)).rejects.toMatchObject({ code: 'QUORUM_UNAVAILABLE' });
  await expect(awaitQuorum([], () => 'pending', (r: string) => r)).rejects.toMatchObject({ code: 'QUORUM_UNAVAILABLE' });
});

test('every call settling without meeting the quorum rejects (an outcome that never says failed)', async () => {
  const calls = [hand(), hand()];
  const waiting = awaitQuorum(calls.map((c) => c.call), () => 'pending', (result: string) => result);
  calls[0]!.resolve('a');
  calls[1]!.reject(new Error('gone'));
  await expect(waiting).rejects.toMatchObject({ code: 'QUORUM_UNAVAILABLE', message: 'quorum not reached: gone' });
});

test('calls still in flight when the quorum is refused up front fail later without an unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  try {
    const call = hand();
    await expect(awaitQuorum([call.call], () => 'failed', (r: string) => r)).rejects.toMatchObject({ code: 'QUORUM_UNAVAILABLE' });
    call.reject(new Error('late'));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
