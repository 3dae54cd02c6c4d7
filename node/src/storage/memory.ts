/**
 * An in-memory StorageEngine: two parallel arrays kept sorted by key bytes, searched by
 * bisection. It is deterministic (no timers, no randomness, iteration in key order), so the
 * simulator can replay a seeded run exactly.
 *
 * Semantics match RocksDbEngine, as the shared conformance suite checks:
 * - every write copies its bytes in and every read copies them out, so callers can neither
 *   change stored data by mutating a buffer nor see later writes through an old one;
 * - a batch is validated first and then applied without any await in between, so it is atomic
 *   for every reader;
 * - a scan sees the entries present when it starts, like an iterator over a RocksDB snapshot;
 * - close() then open() keeps the data, which is how the simulator models a process restart.
 * Durable writes need no work here, so the WriteOptions argument of the interface is omitted.
 */
import { assertBatch, assertKey, assertValue, checkRange, compareBytes } from './bytes';
import { StorageClosedError, type BatchOperation, type RangeOptions, type StorageEngine, type StorageStats } from './engine';

const ENGINE_NAME = 'memory';

export class MemoryEngine implements StorageEngine {
  private readonly keys: Uint8Array[] = [];
  private readonly values: Uint8Array[] = [];
  private bytesStored = 0;
  private isOpen = false;

  async open(): Promise<void> {
    this.isOpen = true;
  }

  /** Idempotent. Data stays, so a later open() sees it (a simulated restart). */
  async close(): Promise<void> {
    this.isOpen = false;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.assertOpen();
    assertKey(key);
    return this.lookup(key);
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.assertOpen();
    for (const key of keys) assertKey(key);
    return keys.map((key) => this.lookup(key));
  }

  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.assertOpen();
    assertKey(key);
    assertValue(value);
    this.putNow(key, value);
  }

  async del(key: Uint8Array): Promise<void> {
    this.assertOpen();
    assertKey(key);
    this.delNow(key);
  }

  async batch(operations: readonly BatchOperation[]): Promise<void> {
    this.assertOpen();
    assertBatch(operations);
    for (const operation of operations) {
      if (operation.type === 'put') this.putNow(operation.key, operation.value);
      else this.delNow(operation.key);
    }
  }

  scan(range: RangeOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    // Checks run when scan() is called, not at the first next(), so misuse fails where it is made.
    this.assertOpen();
    const { empty } = checkRange(range);
    if (empty) return emptyIterable();
    const [start, end] = this.bounds(range);
    // A snapshot of references: stored arrays are never mutated in place, only replaced.
    const keys = this.keys.slice(start, end);
    const values = this.values.slice(start, end);
    return this.snapshotIterable(keys, values);
  }

  async count(range: RangeOptions): Promise<number> {
    this.assertOpen();
    const { empty } = checkRange(range);
    if (empty) return 0;
    const [start, end] = this.bounds(range);
    return end - start;
  }

  async deleteRange(range: RangeOptions): Promise<void> {
    this.assertOpen();
    const { empty } = checkRange(range);
    if (empty) return;
    const [start, end] = this.bounds(range);
    for (let i = start; i < end; i++) this.bytesStored -= this.keys[i]!.length + this.values[i]!.length;
    this.keys.splice(start, end - start);
    this.values.splice(start, end - start);
  }

  async stats(): Promise<StorageStats> {
    this.assertOpen();
    return { approximateBytes: this.bytesStored, engine: ENGINE_NAME };
  }

  /** Like a RocksDB iterator, a scan fails once the engine is closed under it. */
  private async *snapshotIterable(keys: Uint8Array[], values: Uint8Array[]): AsyncGenerator<[Uint8Array, Uint8Array]> {
    for (let i = 0; i < keys.length; i++) {
      this.assertOpen();
      yield [keys[i]!.slice(), values[i]!.slice()];
    }
  }

  private assertOpen(): void {
    if (!this.isOpen) throw new StorageClosedError(ENGINE_NAME);
  }

  private lookup(key: Uint8Array): Uint8Array | undefined {
    const index = this.lowerBound(key);
    const found = this.keys[index];
    return found !== undefined && compareBytes(found, key) === 0 ? this.values[index]!.slice() : undefined;
  }

  private putNow(key: Uint8Array, value: Uint8Array): void {
    const index = this.lowerBound(key);
    const found = this.keys[index];
    const valueCopy = value.slice();
    if (found !== undefined && compareBytes(found, key) === 0) {
      this.bytesStored += valueCopy.length - this.values[index]!.length;
      this.values[index] = valueCopy;
    } else {
      this.keys.splice(index, 0, key.slice());
      this.values.splice(index, 0, valueCopy);
      this.bytesStored += key.length + valueCopy.length;
    }
  }

  private delNow(key: Uint8Array): void {
    const index = this.lowerBound(key);
    const found = this.keys[index];
    if (found === undefined || compareBytes(found, key) !== 0) return;
    this.bytesStored -= found.length + this.values[index]!.length;
    this.keys.splice(index, 1);
    this.values.splice(index, 1);
  }

  /** Index range [start, end) of the keys inside `range`, cut to its limit. */
  private bounds(range: RangeOptions): [number, number] {
    const start = this.lowerBound(range.gte);
    let end = this.lowerBound(range.lt);
    if (range.limit !== undefined) end = Math.min(end, start + range.limit);
    return [start, end];
  }

  /** The first index whose key is >= `key` (keys.length when there is none). */
  private lowerBound(key: Uint8Array): number {
    let low = 0;
    let high = this.keys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBytes(this.keys[middle]!, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

async function* emptyIterable(): AsyncGenerator<[Uint8Array, Uint8Array]> {
  // Nothing to yield: the range is empty.
}

