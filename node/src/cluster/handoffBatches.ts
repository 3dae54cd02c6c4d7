/**
 * The sender's side of a handoff batch: reading the next batch of a partition from storage, its
 * checksum, and the small helpers the pipelined send loop needs (handoff.ts).
 */
import { crc32 } from 'node:zlib';
import { compareBytes } from '../storage/bytes';
import type { StorageEngine } from '../storage/engine';
import { decodeDataKey, partitionDataRange } from '../storage/keys';
import { hasValidChecksum } from '../storage/objectCodec';

/** Framing counted per streamed entry on top of its bytes (msgpack map and field names). */
const ENTRY_OVERHEAD_BYTES = 32;

/** One batch read from the partition, ready to send. */
export interface OutgoingBatch {
  readonly entries: { bucket: string; key: string; object: Uint8Array }[];
  /** What the batch counts against the throttle: values, names and framing. */
  readonly bytes: number;
  /** The raw key of the last entry scanned (a skipped corrupt one included). */
  readonly cursor: Uint8Array;
}

export interface BatchLimits {
  readonly batchKeysMax: number;
  readonly batchBytesMax: number;
}

/**
 * The next batch of the partition after `after` (null: from its start), or undefined at its end.
 * A corrupt copy is not sent (the receiver would refuse the whole batch, for ever) but reported
 * to `onCorrupt`: the new owner gets the key from another replica through anti-entropy, as for a
 * lost copy.
 */
export async function readBatch(engine: StorageEngine, partition: number, after: Uint8Array | null, limits: BatchLimits, onCorrupt: (bucket: string, key: string) => void): Promise<OutgoingBatch | undefined> {
  const range = partitionDataRange(partition);
  const entries: OutgoingBatch['entries'] = [];
  let bytes = 0;
  let cursor: Uint8Array | undefined;
  const gte = after === null ? range.gte : successor(after);
  for await (const [rawKey, value] of engine.scan({ gte, lt: range.lt, limit: limits.batchKeysMax })) {
    const { bucket, key } = decodeDataKey(rawKey);
    cursor = rawKey;
    if (!hasValidChecksum(value)) {
      onCorrupt(bucket, key);
      continue;
    }
    entries.push({ bucket, key, object: value });
    // Names count too: with long keys and small values they are most of the message.
    bytes += value.length + bucket.length + key.length + ENTRY_OVERHEAD_BYTES;
    if (bytes >= limits.batchBytesMax) break;
  }
  return cursor === undefined ? undefined : { entries, bytes, cursor };
}

/**
 * crc32 of the entries' objects concatenated in order, computed piece by piece: the same value
 * as over one concatenated buffer, without copying a whole batch (a profile showed the copy).
 */
export function checksumOf(entries: readonly { readonly object: Uint8Array }[]): number {
  let crc = 0;
  for (const entry of entries) crc = crc32(entry.object, crc);
  return crc;
}

/** What a sent batch counts once the receiver confirmed it. */
export interface SentBatch {
  readonly keys: number;
  readonly bytes: number;
  readonly cursor: Uint8Array;
}

/**
 * Batches sent but not yet covered by the cursor the receiver answers with, oldest first. A batch
 * counts as streamed (progress, metrics) only once that cursor covers it: a batch the receiver
 * applied beyond a gap (it overtook the one before it, which then failed) is sent again after a
 * resume, and must not count twice. Bounded by the batches of one transfer; it holds no entries.
 */
export class Unconfirmed {
  private readonly batches: SentBatch[] = [];

  add(batch: SentBatch): void {
    this.batches.push(batch);
  }

  /** Removes and returns the batches that `cursor` (the receiver's, null: none) covers. */
  coveredBy(cursor: Uint8Array | null): SentBatch[] {
    if (cursor === null) return [];
    let count = 0;
    while (count < this.batches.length && compareBytes(this.batches[count]!.cursor, cursor) <= 0) count++;
    return this.batches.splice(0, count);
  }
}

/** Waits, oldest first, until at most `keep` of the promises are left; the first failure is thrown. */
export async function drain(promises: Promise<void>[], keep: number): Promise<void> {
  while (promises.length > keep) await promises.shift();
}

/** The smallest key after `key`: resume a scan just past the last key sent. */
function successor(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}
