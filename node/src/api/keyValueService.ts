/**
 * The request logic behind the key routes, separate from HTTP parsing. The HTTP layer validates
 * input and renders answers; a KeyValueService turns a validated request into core objects.
 *
 * This implementation (LocalKeyValueService) stores on this node only. The replication
 * issue swaps in a quorum coordinator behind the same interface; TypeScript's structural typing
 * means it need not import this file, only match the shape.
 */
import { EMPTY_OBJECT, update } from '../core/dvv';
import { partitionOf } from '../core/partition';
import type { QuorumSpec } from '../core/quorum';
import type { NewValue, NodeId, VersionVector, VersionedObject } from '../core/version';
import { CorruptObjectError } from '../storage/objectCodec';
import { OverloadedError, type ObjectStore } from '../storage/objectStore';
import { DynamoError } from './errors';

/** Per-request quorum values; the service resolves them against N and bucket defaults. */
export interface QuorumParameters {
  readonly r?: QuorumSpec;
  readonly pr?: QuorumSpec;
  readonly w?: QuorumSpec;
  readonly dw?: QuorumSpec;
  readonly pw?: QuorumSpec;
}

export interface GetOptions extends QuorumParameters {
  /** Read a strict quorum of primaries (DynamoDB's ConsistentRead). */
  readonly consistent?: boolean;
}

export interface WriteOptions extends QuorumParameters {
  /** fsync before answering; defaults to the node's syncWrites setting. */
  readonly sync?: boolean;
}

/**
 * Every method takes validated input and answers with the stored state of the key after the
 * operation. Failures are DynamoErrors with catalogue codes (OVERLOADED, STORAGE_CORRUPT, ...).
 */
export interface KeyValueService {
  /** The key's state, or undefined when it was never written. */
  get(bucket: string, key: string, options: GetOptions): Promise<VersionedObject | undefined>;
  put(bucket: string, key: string, value: Uint8Array, contentType: string, context: VersionVector, options: WriteOptions): Promise<VersionedObject>;
  /** Writes a tombstone that supersedes what `context` saw. */
  delete(bucket: string, key: string, context: VersionVector, options: WriteOptions): Promise<VersionedObject>;
}

export interface LocalServiceOptions {
  readonly nodeId: NodeId;
  readonly partitionCount: number;
  readonly maxSiblings: number;
  readonly syncWrites: boolean;
  /** Wall clock for lastModified; injected so tests are deterministic. */
  readonly nowMs: () => number;
  /** Called with the number of siblings the cap dropped on a write (a metric). */
  readonly onSiblingsDropped?: (count: number) => void;
}

const EMPTY_VALUE = new Uint8Array(0);
const TOMBSTONE_CONTENT_TYPE = 'application/octet-stream';

export class LocalKeyValueService implements KeyValueService {
  constructor(
    private readonly store: ObjectStore,
    private readonly options: LocalServiceOptions,
  ) {}

  async get(bucket: string, key: string, _options: GetOptions): Promise<VersionedObject | undefined> {
    const partition = partitionOf(bucket, key, this.options.partitionCount);
    return translateStorageErrors(() => this.store.read(partition, bucket, key));
  }

  put(bucket: string, key: string, value: Uint8Array, contentType: string, context: VersionVector, options: WriteOptions): Promise<VersionedObject> {
    return this.write(bucket, key, { value, contentType, lastModifiedMs: this.options.nowMs(), deleted: false }, context, options);
  }

  delete(bucket: string, key: string, context: VersionVector, options: WriteOptions): Promise<VersionedObject> {
    const tombstone: NewValue = { value: EMPTY_VALUE, contentType: TOMBSTONE_CONTENT_TYPE, lastModifiedMs: this.options.nowMs(), deleted: true };
    return this.write(bucket, key, tombstone, context, options);
  }

  private async write(bucket: string, key: string, value: NewValue, context: VersionVector, options: WriteOptions): Promise<VersionedObject> {
    const partition = partitionOf(bucket, key, this.options.partitionCount);
    let droppedSiblings = 0;
    const stored = await translateStorageErrors(() =>
      this.store.update(
        partition,
        bucket,
        key,
        (current) => {
          const result = update(current ?? EMPTY_OBJECT, context, this.options.nodeId, value, {
            conflictMode: 'siblings',
            maxSiblings: this.options.maxSiblings,
          });
          droppedSiblings = result.droppedSiblings;
          return result.object;
        },
        { sync: options.sync ?? this.options.syncWrites },
      ),
    );
    if (droppedSiblings > 0) this.options.onSiblingsDropped?.(droppedSiblings);
    // mutate never returns undefined here, so the store always writes and returns the object.
    if (stored === undefined) throw new DynamoError('INTERNAL', 'The store did not return the written object.');
    return stored;
  }
}

/** Maps storage failures to catalogue errors; anything unexpected stays as is (-> INTERNAL). */
export async function translateStorageErrors<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof OverloadedError) throw new DynamoError('OVERLOADED', 'Too many writes are waiting on this key.');
    if (error instanceof CorruptObjectError) throw new DynamoError('STORAGE_CORRUPT');
    throw error;
  }
}
