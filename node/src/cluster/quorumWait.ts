/**
 * Waiting for replica answers until a quorum is met or cannot be: the one asynchronous loop of
 * the coordinator, with the decision itself left to a pure outcome function from core/quorum.ts
 * (writeOutcome, readOutcome), and the error the API turns into QUORUM_UNAVAILABLE.
 */

/** A failure the API turns into a catalogue error. */
export class CoordinationError extends Error {
  constructor(
    readonly code: 'QUORUM_UNAVAILABLE' | 'TIMEOUT',
    message: string,
  ) {
    super(message);
    this.name = 'CoordinationError';
  }
}

/** One replica call in flight: whether it goes to a primary, and its answer to come. */
export interface OutstandingCall<T> {
  readonly primary: boolean;
  readonly promise: Promise<T>;
}

/** How many failure reasons a QUORUM_UNAVAILABLE message quotes. */
const REASONS_QUOTED_MAX = 3;

/**
 * Resolves with the answers (mapped by `toDone`) as soon as `outcome` says met, and rejects with
 * QUORUM_UNAVAILABLE as soon as it says failed or every call has settled without meeting it.
 * Each call has its own timeout, so this is bounded by the slowest one. Answers that arrive
 * after the decision are left alone (read repair looks at them separately).
 *
 * One reaction per call, attached once: this runs for every client request, and racing the
 * pending calls afresh after each answer allocated a promise per call per answer.
 */
export function awaitQuorum<T, R>(
  outstanding: readonly OutstandingCall<T>[],
  outcome: (done: R[], pendingPrimaries: boolean[]) => 'pending' | 'met' | 'failed',
  toDone: (result: T, primary: boolean) => R,
): Promise<R[]> {
  // Every call is observed from the start: one that fails after the decision (or after an early
  // refusal below) must not become an unhandled rejection, which would end a node's process.
  for (const call of outstanding) call.promise.catch(() => undefined);
  const done: R[] = [];
  const settled = outstanding.map(() => false);
  const pendingPrimaries = (): boolean[] => outstanding.flatMap((o, i) => (settled[i] === true ? [] : [o.primary]));
  const initially = outcome(done, pendingPrimaries());
  if (initially === 'met') return Promise.resolve(done);
  if (initially === 'failed') return Promise.reject(new CoordinationError('QUORUM_UNAVAILABLE', 'not enough replicas are reachable'));
  if (outstanding.length === 0) return Promise.reject(new CoordinationError('QUORUM_UNAVAILABLE', 'quorum not reached: too few replicas'));
  return new Promise<R[]>((resolve, reject) => {
    const errors: string[] = [];
    let remaining = outstanding.length;
    let decided = false;
    const onSettled = (index: number, answer: { result: T } | { error: unknown }): void => {
      if (decided) return;
      settled[index] = true;
      remaining--;
      if ('result' in answer) done.push(toDone(answer.result, outstanding[index]!.primary));
      else errors.push(answer.error instanceof Error ? answer.error.message : String(answer.error));
      const now = outcome(done, pendingPrimaries());
      if (now === 'met') {
        decided = true;
        resolve(done);
      } else if (now === 'failed' || remaining === 0) {
        decided = true;
        reject(new CoordinationError('QUORUM_UNAVAILABLE', `quorum not reached: ${errors.slice(0, REASONS_QUOTED_MAX).join('; ') || 'too few replicas'}`));
      }
    };
    outstanding.forEach((call, index) => {
      call.promise.then(
        (result) => onSettled(index, { result }),
        (error: unknown) => onSettled(index, { error }),
      );
    });
  });
}
