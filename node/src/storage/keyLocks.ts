/**
 * Per-key async locks for ObjectStore: one FIFO queue of waiters per key. The holder hands the
 * lock straight to the next waiter, and the entry disappears when nobody holds or waits, so the
 * map stays as small as the contention.
 */

/** Too many updates are already waiting for the same key (or, as `what` says, for another bounded queue). */
export class OverloadedError extends Error {
  constructor(
    readonly waitersMax: number,
    what = 'updates are waiting for the same key',
  ) {
    super(`more than ${waitersMax} ${what}`);
    this.name = 'OverloadedError';
  }
}

export class KeyLocks {
  private readonly queues = new Map<string, (() => void)[]>();

  constructor(private readonly waitersMax: number) {}

  get size(): number {
    return this.queues.size;
  }

  async acquire(id: string): Promise<void> {
    const waiters = this.queues.get(id);
    if (waiters === undefined) {
      this.queues.set(id, []);
      return;
    }
    if (waiters.length >= this.waitersMax) throw new OverloadedError(this.waitersMax);
    await new Promise<void>((resolve) => waiters.push(resolve));
  }

  /**
   * Takes the lock only if nobody holds it now, without waiting: true when taken (release it as
   * after acquire). A caller taking many keys at once never waits while it holds some, so it
   * cannot deadlock with another such caller or with a single-key holder.
   */
  tryAcquire(id: string): boolean {
    if (this.queues.has(id)) return false;
    this.queues.set(id, []);
    return true;
  }

  release(id: string): void {
    const waiters = this.queues.get(id);
    const next = waiters?.shift();
    if (next === undefined) this.queues.delete(id);
    else next();
  }
}

/**
 * The lock id of a stored object's key. Built from the names rather than the engine key's bytes:
 * a string concatenation is much cheaper than turning bytes into a string (a profile of the
 * handoff receiver showed it), and the bucket's length makes every (bucket, key) pair distinct.
 */
export function lockIdOf(partition: number, bucket: string, key: string): string {
  return `${partition}/${bucket.length}/${bucket}/${key}`;
}
