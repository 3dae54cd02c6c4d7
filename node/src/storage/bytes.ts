/**
 * Byte helpers shared by the engines, the key layout and the object store, plus the argument
 * checks every engine runs before it touches data (the abstract-level habit: the public
 * surface validates, the implementation can then trust its input).
 */
import { StorageArgumentError, type BatchOperation, type RangeOptions } from './engine';

/** Lexicographic comparison of unsigned bytes: the order RocksDB's default comparator uses. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/** The concatenation of the parts, in one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const result = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.length;
  }
  return result;
}

/**
 * The smallest key greater than every key that starts with `prefix`, or undefined when no such
 * key exists (the prefix is empty or all 0xff). Used to turn a prefix into an exclusive bound.
 */
export function prefixSuccessor(prefix: Uint8Array): Uint8Array | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] !== 0xff) {
      const result = prefix.slice(0, i + 1);
      result[i] = result[i]! + 1;
      return result;
    }
  }
  return undefined;
}

/** The smallest key strictly greater than `key`: the key with a 0x00 byte appended. */
export function keySuccessor(key: Uint8Array): Uint8Array {
  const result = new Uint8Array(key.length + 1);
  result.set(key, 0);
  return result;
}

export function assertKey(key: unknown, what = 'key'): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array)) throw new StorageArgumentError(`${what} must be a Uint8Array`);
  if (key.length === 0) throw new StorageArgumentError(`${what} must not be empty`);
}

export function assertValue(value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new StorageArgumentError('value must be a Uint8Array');
}

/** Checks every operation before any is applied, so a bad batch writes nothing. */
export function assertBatch(operations: readonly BatchOperation[]): void {
  if (!Array.isArray(operations)) throw new StorageArgumentError('batch operations must be an array');
  for (const operation of operations) {
    if (typeof operation !== 'object' || operation === null) throw new StorageArgumentError('batch operation must be an object');
    if (operation.type === 'put') {
      assertKey(operation.key);
      assertValue(operation.value);
    } else if (operation.type === 'del') {
      assertKey(operation.key);
    } else {
      throw new StorageArgumentError(`unknown batch operation type ${String((operation as { type?: unknown }).type)}`);
    }
  }
}

/**
 * Checks a range and says whether it can hold any key at all: gte >= lt or a limit of 0 means
 * an empty range, which engines answer without touching storage.
 */
export function checkRange(range: RangeOptions): { empty: boolean } {
  if (typeof range !== 'object' || range === null) throw new StorageArgumentError('range must be an object');
  if (!(range.gte instanceof Uint8Array)) throw new StorageArgumentError('range.gte must be a Uint8Array');
  if (!(range.lt instanceof Uint8Array)) throw new StorageArgumentError('range.lt must be a Uint8Array');
  const limit = range.limit;
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw new StorageArgumentError('range.limit must be a non-negative integer');
  }
  return { empty: limit === 0 || compareBytes(range.gte, range.lt) >= 0 };
}
