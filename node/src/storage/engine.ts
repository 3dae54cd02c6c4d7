/**
 * The storage boundary. Keys handed to an engine are already encoded by keys.ts, which puts
 * the partition number first, so one partition is one contiguous key range.
 * Engines store opaque bytes; the object codec (objectCodec.ts) turns VersionedObject into bytes.
 */

export interface WriteOptions {
  /** fsync the write-ahead log before resolving (a "durable write"). Off by default. */
  readonly sync?: boolean;
}

export type BatchOperation =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

export interface RangeOptions {
  /** Inclusive lower bound. */
  readonly gte: Uint8Array;
  /** Exclusive upper bound. */
  readonly lt: Uint8Array;
  /** Stop after this many entries (a bound on every scan). */
  readonly limit?: number;
}

export interface StorageStats {
  readonly approximateBytes: number;
  readonly engine: string;
}

export interface StorageEngine {
  open(): Promise<void>;
  close(): Promise<void>;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  put(key: Uint8Array, value: Uint8Array, options?: WriteOptions): Promise<void>;
  del(key: Uint8Array, options?: WriteOptions): Promise<void>;
  /** Applies every operation atomically: all or none. */
  batch(operations: readonly BatchOperation[], options?: WriteOptions): Promise<void>;
  /** Entries with gte <= key < lt in ascending key order. */
  scan(range: RangeOptions): AsyncIterable<[Uint8Array, Uint8Array]>;
  /** Number of keys in the range (exact; may scan). */
  count(range: RangeOptions): Promise<number>;
  /** Deletes every key in the range. */
  deleteRange(range: RangeOptions, options?: WriteOptions): Promise<void>;
  stats(): Promise<StorageStats>;
}

/**
 * Thrown by an engine that is not open (before open(), during or after close()). The API layer
 * maps it to a 503: the node is shutting down or not ready.
 */
export class StorageClosedError extends Error {
  constructor(readonly engine: string) {
    super(`storage engine ${engine} is not open`);
    this.name = 'StorageClosedError';
  }
}

/**
 * Thrown when a caller hands an engine an impossible argument (a key that is not a non-empty
 * Uint8Array, a negative limit, ...). Engines validate every operation of a batch before
 * applying any of them, so this error always means nothing was written.
 */
export class StorageArgumentError extends Error {
  constructor(readonly reason: string) {
    super(`invalid storage operation: ${reason}`);
    this.name = 'StorageArgumentError';
  }
}
