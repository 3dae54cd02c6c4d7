/**
 * The request logic behind the key routes, separate from HTTP parsing. The HTTP layer validates
 * input and renders answers; a KeyValueService turns a validated request into core objects.
 *
 * The one implementation is ClusterKeyValueService (clusterKeyValueService.ts): a node always
 * runs the cluster layer, and a single node is a cluster of one member. Tests wrap the service
 * (blocking, failing) through this interface.
 */
import type { QuorumSpec } from '../core/quorum';
import type { VersionVector, VersionedObject } from '../core/version';
import { CorruptObjectError } from '../storage/objectCodec';
import { OverloadedError } from '../storage/objectStore';
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

/** Maps storage failures to catalogue errors; anything unexpected stays as is (-> INTERNAL). */
export async function translateStorageErrors<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw translateStorageError(error);
  }
}

/** The catalogue error for a storage failure, or the error itself when it is not one. */
export function translateStorageError(error: unknown): unknown {
  if (error instanceof OverloadedError) return new DynamoError('OVERLOADED', 'Too many writes are waiting on this key.');
  if (error instanceof CorruptObjectError) return new DynamoError('STORAGE_CORRUPT');
  return error;
}
