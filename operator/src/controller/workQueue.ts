/**
 * The reconcile work queue: keys (namespace/name of a DynamoCluster) with a due time.
 * - Per-key serialization: a key is never handled twice at once; adding a key that is being
 *   handled marks it to run again right after.
 * - Coalescing: a key is queued once, at the earliest time anyone asked for.
 * - Back-off per key on failure (doubling up to a cap), reset by the first success.
 * - Bounded: at most `keysMax` distinct keys wait; more are dropped and counted (the periodic
 *   resync brings them back), so a flood of watch events cannot grow memory without limit.
 * Time comes from an injected Clock, so the tests drive it without sleeping.
 */

export interface Clock {
  nowMs(): number;
  /** Calls fn after delayMs; the returned function cancels it. */
  setTimer(fn: () => void, delayMs: number): () => void;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  setTimer: (fn, delayMs) => {
    const timer = setTimeout(fn, Math.max(0, delayMs));
    return () => clearTimeout(timer);
  },
};

export interface WorkQueueOptions {
  /** Handles one key; answers when to handle it again (undefined: only when something changes). */
  readonly handle: (key: string) => Promise<number | undefined>;
  readonly concurrency: number;
  readonly keysMax: number;
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
  readonly clock: Clock;
  readonly onError: (key: string, error: unknown, retryInMs: number) => void;
  readonly onDrop?: (key: string) => void;
}

export class WorkQueue {
  private readonly due = new Map<string, number>();
  private readonly running = new Set<string>();
  /** Keys added while running, with the earliest due time asked for. */
  private readonly again = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  /** After a failure, the key waits out its back-off even if events ask for it sooner. */
  private readonly notBefore = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private cancelTimer: (() => void) | undefined;
  private timerAtMs = Infinity;
  private stopped = false;

  constructor(private readonly options: WorkQueueOptions) {}

  get size(): number {
    return this.due.size;
  }

  add(key: string, delayMs = 0): void {
    if (this.stopped) return;
    const at = Math.max(this.options.clock.nowMs() + Math.max(0, delayMs), this.notBefore.get(key) ?? 0);
    if (this.running.has(key)) {
      this.again.set(key, Math.min(this.again.get(key) ?? Infinity, at));
      return;
    }
    const current = this.due.get(key);
    if (current === undefined && this.due.size >= this.options.keysMax) {
      this.options.onDrop?.(key);
      return;
    }
    if (current === undefined || at < current) this.due.set(key, at);
    this.pump();
  }

  /** Forgets a key (its object was deleted): no retry, no back-off state. */
  forget(key: string): void {
    this.due.delete(key);
    this.again.delete(key);
    this.failures.delete(key);
    this.notBefore.delete(key);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.due.clear();
    await Promise.all([...this.inFlight]);
  }

  private pump(): void {
    if (this.stopped) return;
    const now = this.options.clock.nowMs();
    while (this.running.size < this.options.concurrency) {
      const next = this.nextDue(now);
      if (next === undefined) break;
      this.due.delete(next);
      this.run(next);
    }
    this.armTimer(now);
  }

  private nextDue(now: number): string | undefined {
    let best: string | undefined;
    let bestAt = Infinity;
    for (const [key, at] of this.due) {
      if (at <= now && at < bestAt && !this.running.has(key)) {
        best = key;
        bestAt = at;
      }
    }
    return best;
  }

  private armTimer(now: number): void {
    let earliest = Infinity;
    for (const at of this.due.values()) earliest = Math.min(earliest, at);
    if (earliest === Infinity || this.running.size >= this.options.concurrency) return;
    if (earliest >= this.timerAtMs && this.cancelTimer !== undefined) return;
    this.cancelTimer?.();
    this.timerAtMs = earliest;
    this.cancelTimer = this.options.clock.setTimer(() => {
      this.cancelTimer = undefined;
      this.timerAtMs = Infinity;
      this.pump();
    }, earliest - now);
  }

  private run(key: string): void {
    this.running.add(key);
    const done = this.options
      .handle(key)
      .then(
        (requeueAfterMs) => {
          this.failures.delete(key);
          this.notBefore.delete(key);
          return requeueAfterMs;
        },
        (error: unknown) => {
          const failures = (this.failures.get(key) ?? 0) + 1;
          this.failures.set(key, failures);
          const retryInMs = Math.min(this.options.backoffMsMax, this.options.backoffMsMin * 2 ** Math.min(failures - 1, 20));
          this.notBefore.set(key, this.options.clock.nowMs() + retryInMs);
          this.options.onError(key, error, retryInMs);
          return retryInMs;
        },
      )
      .then((requeueAfterMs) => {
        this.running.delete(key);
        const again = this.again.get(key);
        this.again.delete(key);
        if (again !== undefined) this.add(key, again - this.options.clock.nowMs());
        if (requeueAfterMs !== undefined) this.add(key, requeueAfterMs);
        this.pump();
      });
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }
}
