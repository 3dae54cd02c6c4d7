/**
 * The only place that reads, modifies and writes stored objects. Concurrent updates of one key
 * are serialised by a per-key async lock, so a read-merge-write never loses a concurrent write;
 * updates of different keys run in parallel. The new object and any extra records (a hint, say)
 * go to the engine in one batch, so they become visible together or not at all.
 *
 * Bounds: at most `maxLockWaiters` updates wait on one key (the next gets OverloadedError, which
 * the API answers with 503); a lock entry exists only while someone holds or waits for it.
 * Reads take no lock: a batch is atomic, so a read sees the object before or after an update.
 *
 * Corruption: stored bytes that fail their checksum or format check are never returned as data.
 * `read` and `update` throw CorruptObjectError (an update with replaceCorrupt hands `mutate`
 * undefined instead, so a repair can overwrite the bytes), a partition scan skips the entry, and
 * every detection is reported to `onCorruptObject` (the node counts and logs it).
 */
import { compareBytes, equalBytes, keySuccessor } from './bytes';
import { StorageClosedError, type BatchOperation, type StorageEngine } from './engine';
import { allHintsRange, dataKey, decodeDataKey, decodeHintKey, hintKey, hintRangeForTarget, partitionDataRange } from './keys';
import { KeyLocks, lockIdOf } from './keyLocks';
import { CorruptObjectError, decodeObject, encodeObject } from './objectCodec';
import type { VersionedObject } from '../core/version';

export { OverloadedError } from './keyLocks';

/** More hint targets than this are not searched for other hints; the local copy is then kept. */
const HINT_TARGETS_SEARCHED_MAX = 1024;

export interface ObjectStoreOptions {
  /** Updates allowed to wait for one key's lock; one more is refused with OverloadedError. */
  readonly maxLockWaiters: number;
}

export interface UpdateOptions {
  /** fsync before resolving (a durable write). */
  readonly sync?: boolean;
  /** Written in the same batch as the object, e.g. a hint record. */
  readonly extraOperations?: readonly BatchOperation[];
  /**
   * When the stored bytes are corrupt, hand `mutate` undefined instead of throwing, so a full
   * copy from another replica can replace them. Off by default: a plain client write over a
   * corrupt object must fail rather than forget the siblings it cannot read.
   */
  readonly replaceCorrupt?: boolean;
}

export type Mutation = (current: VersionedObject | undefined) => VersionedObject | undefined;

/**
 * Told about every object this store wrote or removed, after the batch is applied and while the
 * key's lock is still held, so calls for one key arrive in the order the changes happened.
 * Anti-entropy keeps its hash trees current through it. It must not throw.
 */
export type ObjectChangeObserver = (partition: number, bucket: string, key: string, before: VersionedObject | undefined, after: VersionedObject | undefined) => void;

/** One detection of corrupt stored bytes. */
export interface CorruptObjectEvent {
  readonly partition: number;
  readonly bucket: string;
  readonly key: string;
  readonly reason: string;
  /**
   * True when an update with replaceCorrupt is about to overwrite the bytes. The node takes a new
   * actor id first: the lost object may have held dots of its current id that no other replica
   * has, and a new dot must never reuse one of them.
   */
  readonly replaced: boolean;
}

/** An object received whole from another replica, as its encoded bytes (e.g. a handoff batch entry). */
export interface ReceivedObject {
  readonly bucket: string;
  readonly key: string;
  readonly encoded: Uint8Array;
}

export interface StoredObject {
  readonly partition: number;
  readonly bucket: string;
  readonly key: string;
  readonly object: VersionedObject;
  /** The engine key; pass it as `after` to resume a scan. */
  readonly rawKey: Uint8Array;
}

export class ObjectStore {
  private readonly locks: KeyLocks;
  private isClosed = false;
  private operationsInFlight = 0;
  private drained: (() => void) | undefined;
  /** Set by the wiring (anti-entropy); undefined means nobody listens. */
  onObjectChanged: ObjectChangeObserver | undefined;
  /** Set by the wiring (metrics, log, actor id); called for every corrupt object found. It must not throw. */
  onCorruptObject: ((event: CorruptObjectEvent) => void) | undefined;

  constructor(
    private readonly engine: StorageEngine,
    options: ObjectStoreOptions,
  ) {
    if (!Number.isSafeInteger(options.maxLockWaiters) || options.maxLockWaiters < 0) {
      throw new RangeError('maxLockWaiters must be a non-negative integer');
    }
    this.locks = new KeyLocks(options.maxLockWaiters);
  }

  /** The object, or undefined when the key was never stored (a deleted key is a tombstone). */
  async read(partition: number, bucket: string, key: string): Promise<VersionedObject | undefined> {
    const rawKey = dataKey(partition, bucket, key);
    const bytes = await this.engine.get(rawKey);
    return bytes === undefined ? undefined : this.decodeReported(bytes, rawKey, false);
  }

  /** The encoded object as stored (checksum included), e.g. to send to a peer as is. */
  async readRaw(partition: number, bucket: string, key: string): Promise<Uint8Array | undefined> {
    return this.engine.get(dataKey(partition, bucket, key));
  }

  /**
   * Runs `mutate` on the current object under the key's lock and stores what it returns,
   * together with `extraOperations`, in one batch. When `mutate` returns undefined nothing is
   * written (not the extra operations either). Resolves to the object stored afterwards: the
   * new one, or the unchanged current one when nothing was written.
   */
  async update(partition: number, bucket: string, key: string, mutate: Mutation, options: UpdateOptions = {}): Promise<VersionedObject | undefined> {
    const rawKey = dataKey(partition, bucket, key);
    return this.withKeyLock(lockIdOf(partition, bucket, key), async () => {
      const bytes = await this.engine.get(rawKey);
      let current: VersionedObject | undefined;
      try {
        current = bytes === undefined ? undefined : this.decodeReported(bytes, rawKey, options.replaceCorrupt === true);
      } catch (error) {
        if (!(error instanceof CorruptObjectError && options.replaceCorrupt === true)) throw error;
      }
      const next = mutate(current);
      if (next === undefined) return current;
      const operations: BatchOperation[] = [{ type: 'put', key: rawKey, value: encodeObject(next) }, ...(options.extraOperations ?? [])];
      await this.engine.batch(operations, { sync: options.sync === true });
      this.onObjectChanged?.(partition, bucket, key, current, next);
      return next;
    });
  }

  /**
   * Stores received objects of `partition` for the keys this store holds no copy of, with one
   * multi-get and one batch, writing the received bytes as they are: with no copy there is
   * nothing to merge, and decoding, merging and re-encoding every object one key at a time was
   * most of a handoff receiver's work. Resolves to the objects it left alone, in input order: a
   * key with a stored copy (even a corrupt one) or whose lock someone holds right now. The caller
   * merges those through update(), which waits for the lock.
   *
   * Every object is decoded first (format, checksum, invariants): the change observer needs the
   * object, and bytes that fail make the whole call throw CorruptObjectError before anything is
   * written. Locks are only taken when free (never awaited while others are held), so this call
   * cannot deadlock with another one or with update(), and it never overtakes an update in
   * progress: a client write either ran before (the key then has a copy and is left to the
   * merge) or waits for this batch and then reads what it stored.
   */
  async insertMissing(partition: number, objects: readonly ReceivedObject[], options: { readonly sync?: boolean } = {}): Promise<ReceivedObject[]> {
    this.assertOpen();
    const rawKeys = objects.map((o) => dataKey(partition, o.bucket, o.key));
    const decoded = objects.map((o, i) => decodeStored(o.encoded, rawKeys[i]!));
    const lockIds: (string | undefined)[] = objects.map((o) => {
      const id = lockIdOf(partition, o.bucket, o.key);
      return this.locks.tryAcquire(id) ? id : undefined;
    });
    const taken = objects.flatMap((_, i) => (lockIds[i] === undefined ? [] : [i]));
    const written = new Set<number>();
    this.operationsInFlight++;
    try {
      const current = taken.length === 0 ? [] : await this.engine.getMany(taken.map((i) => rawKeys[i]!));
      const operations: BatchOperation[] = [];
      taken.forEach((i, n) => {
        if (current[n] !== undefined) return;
        operations.push({ type: 'put', key: rawKeys[i]!, value: objects[i]!.encoded });
        written.add(i);
      });
      if (operations.length > 0) await this.engine.batch(operations, { sync: options.sync === true });
      // Observers are told while the locks are still held, as update() does.
      for (const i of written) this.onObjectChanged?.(partition, objects[i]!.bucket, objects[i]!.key, undefined, decoded[i]);
    } finally {
      for (const id of lockIds) if (id !== undefined) this.locks.release(id);
      this.operationsInFlight--;
      this.notifyIfDrained();
    }
    return objects.filter((_, i) => !written.has(i));
  }

  /**
   * The objects of one partition in key order, starting after `after` (a rawKey from an earlier
   * scan) and stopping after `limit` entries. A corrupt object is skipped (and reported), so a
   * scan, and the hash tree built from it, sees the key as missing until a repair replaces it.
   * `limit` counts objects yielded, not entries skipped.
   */
  scanPartition(partition: number, options: { limit?: number; after?: Uint8Array } = {}): AsyncIterable<StoredObject> {
    this.assertOpen();
    const range = partitionDataRange(partition);
    let gte = range.gte;
    if (options.after !== undefined) {
      const resume = keySuccessor(options.after);
      if (compareBytes(resume, gte) > 0) gte = resume;
    }
    return this.scanObjects(gte, range.lt, options.limit);
  }

  /**
   * Removes the hint for `target` after the target acknowledged the hinted object, but only if
   * the hint still holds `stamp`: a write that re-hinted the key meanwhile replaced the stamp, so
   * its hint stays for the next delivery round. With `dropLocalCopy` (this node does not own the
   * partition) the local object goes too, in the same batch, unless a hint for another target
   * still needs it. Resolves to true when the local copy was dropped.
   */
  async removeHint(target: string, partition: number, bucket: string, key: string, stamp: Uint8Array, dropLocalCopy: boolean): Promise<boolean> {
    const rawKey = dataKey(partition, bucket, key);
    // The data key's lock: updates write hints for this key under it too.
    return this.withKeyLock(lockIdOf(partition, bucket, key), async () => {
      const rawHint = hintKey(target, partition, bucket, key);
      const current = await this.engine.get(rawHint);
      if (current === undefined || !equalBytes(current, stamp)) return false;
      const operations: BatchOperation[] = [{ type: 'del', key: rawHint }];
      const dropCopy = dropLocalCopy && !(await this.otherHintsExist(target, partition, bucket, key));
      if (dropCopy) operations.push({ type: 'del', key: rawKey });
      const observer = this.onObjectChanged;
      const before = dropCopy && observer !== undefined ? await this.readForObserver(rawKey) : undefined;
      // Not synced: after a crash the hint or copy comes back, and delivering it again is harmless.
      await this.engine.batch(operations);
      if (dropCopy && before !== undefined) observer?.(partition, bucket, key, before, undefined);
      return dropCopy;
    });
  }

  /**
   * Deletes the key's object, under its lock, when `approve` accepts the object stored now
   * (tombstone reaping: only the exact tombstone every replica confirmed may go, not a newer
   * write that arrived meanwhile). Not synced: a delete lost in a crash only brings the
   * tombstone back, to be reaped again. Resolves to true when the object was deleted.
   */
  async removeIf(partition: number, bucket: string, key: string, approve: (current: VersionedObject) => boolean): Promise<boolean> {
    const rawKey = dataKey(partition, bucket, key);
    return this.withKeyLock(lockIdOf(partition, bucket, key), async () => {
      const bytes = await this.engine.get(rawKey);
      if (bytes === undefined) return false;
      const current = decodeStored(bytes, rawKey);
      if (!approve(current)) return false;
      await this.engine.batch([{ type: 'del', key: rawKey }]);
      this.onObjectChanged?.(partition, bucket, key, current, undefined);
      return true;
    });
  }

  /** Keys with an update holding or waiting for their lock (0 when idle; for tests and metrics). */
  lockedKeyCount(): number {
    return this.locks.size;
  }

  /**
   * Refuses new updates, waits for the admitted ones (each is bounded), then closes the engine.
   * The store is handed its engine and is the last user of it at shutdown, so it closes it.
   */
  async close(): Promise<void> {
    this.isClosed = true;
    if (this.operationsInFlight > 0 || this.locks.size > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
      });
    }
    await this.engine.close();
  }

  private async withKeyLock<T>(id: string, work: () => Promise<T>): Promise<T> {
    this.assertOpen();
    await this.locks.acquire(id);
    this.operationsInFlight++;
    try {
      return await work();
    } finally {
      this.locks.release(id);
      this.operationsInFlight--;
      this.notifyIfDrained();
    }
  }

  private notifyIfDrained(): void {
    if (this.operationsInFlight === 0 && this.locks.size === 0) this.drained?.();
  }

  /**
   * Whether a hint for this key waits for a target other than `exceptTarget`. Hints are grouped
   * by target, so this visits each target's range once (one single-entry scan to find the next
   * target, one point read for this key) instead of scanning every hint.
   */
  private async otherHintsExist(exceptTarget: string, partition: number, bucket: string, key: string): Promise<boolean> {
    const hints = allHintsRange();
    let gte = hints.gte;
    for (let searched = 0; searched < HINT_TARGETS_SEARCHED_MAX; searched++) {
      let first: Uint8Array | undefined;
      for await (const [rawHint] of this.engine.scan({ gte, lt: hints.lt, limit: 1 })) first = rawHint;
      if (first === undefined) return false;
      const { target } = decodeHintKey(first);
      if (target !== exceptTarget && (await this.engine.get(hintKey(target, partition, bucket, key))) !== undefined) return true;
      gte = hintRangeForTarget(target).lt;
    }
    return true;
  }

  /** The object about to be removed; a corrupt one is reported as absent (the tree heals later). */
  private async readForObserver(rawKey: Uint8Array): Promise<VersionedObject | undefined> {
    const bytes = await this.engine.get(rawKey);
    if (bytes === undefined) return undefined;
    try {
      return decodeStored(bytes, rawKey);
    } catch {
      return undefined;
    }
  }

  /** decodeStored, reporting a corrupt object before the error goes on. */
  private decodeReported(bytes: Uint8Array, rawKey: Uint8Array, replaced: boolean): VersionedObject {
    try {
      return decodeStored(bytes, rawKey);
    } catch (error) {
      if (error instanceof CorruptObjectError) this.reportCorrupt(rawKey, error, replaced);
      throw error;
    }
  }

  private reportCorrupt(rawKey: Uint8Array, error: CorruptObjectError, replaced: boolean): void {
    const observer = this.onCorruptObject;
    if (observer === undefined) return;
    const { partition, bucket, key } = decodeDataKey(rawKey);
    observer({ partition, bucket, key, reason: error.reason, replaced });
  }

  /**
   * Objects in [gte, lt), at most `limit`. Each engine page asks for as many entries as objects
   * are still wanted; when a page had to skip corrupt entries, the next page starts after its
   * last key and asks for the shortfall. Bounded: every page advances through the range, and
   * only a page that skipped something and filled its limit leads to another one.
   */
  private async *scanObjects(gte: Uint8Array, lt: Uint8Array, limit: number | undefined): AsyncGenerator<StoredObject> {
    let from = gte;
    let remaining = limit;
    for (;;) {
      let seen = 0;
      let skipped = 0;
      let last: Uint8Array | undefined;
      for await (const [rawKey, value] of this.engine.scan({ gte: from, lt, limit: remaining })) {
        seen++;
        last = rawKey;
        const { partition, bucket, key } = decodeDataKey(rawKey);
        let object: VersionedObject;
        try {
          object = decodeStored(value, rawKey);
        } catch (error) {
          if (!(error instanceof CorruptObjectError)) throw error;
          this.reportCorrupt(rawKey, error, false);
          skipped++;
          continue;
        }
        yield { partition, bucket, key, object, rawKey };
      }
      if (remaining === undefined || skipped === 0 || last === undefined || seen < remaining) return;
      remaining = skipped;
      from = keySuccessor(last);
    }
  }

  private assertOpen(): void {
    if (this.isClosed) throw new StorageClosedError('object store');
  }
}

/** decodeObject, with the key named in the error so an operator can find the bad record. */
function decodeStored(bytes: Uint8Array, rawKey: Uint8Array): VersionedObject {
  try {
    return decodeObject(bytes);
  } catch (error) {
    if (!(error instanceof CorruptObjectError)) throw error;
    throw new CorruptObjectError(`${error.reason} (key ${Buffer.from(rawKey).toString('hex')})`);
  }
}
