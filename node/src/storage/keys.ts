/**
 * The RocksDB key layout. The first byte says what a record is, and the rest is laid out so the
 * ranges the node works on are contiguous:
 *
 *   data object      [0x01][partition u32 BE][bucket length u16 BE][bucket UTF-8][key UTF-8]
 *   hint             [0x02][target length u8][target UTF-8][partition u32 BE][bucket length u16 BE][bucket][key]
 *   node metadata    [0x03][name UTF-8]
 *   bucket props     [0x04][bucket UTF-8]
 *
 * A partition's objects are one range (handoff streams it, anti-entropy hashes it, a leaving
 * node drops it with one range delete); all hints for one target node are one range, and inside
 * it each partition is a range. Big-endian numbers make byte order equal numeric order. The
 * bucket carries its length and the key runs to the end, so the encoding is injective.
 *
 * Strings must be well-formed UTF-16: a lone surrogate would encode as U+FFFD and two different
 * keys would share one record, so encoders refuse it.
 */
import { concatBytes, prefixSuccessor } from './bytes';

export const KEY_KIND = { data: 0x01, hint: 0x02, meta: 0x03, bucketProps: 0x04 } as const;

export const PARTITION_MAX = 0xffff_ffff;
export const BUCKET_BYTES_MAX = 0xffff;
export const NODE_ID_BYTES_MAX = 0xff;

/** A key that does not follow the layout above (wrong kind, truncated, invalid UTF-8). */
export class KeyDecodeError extends Error {
  constructor(readonly reason: string) {
    super(`malformed storage key: ${reason}`);
    this.name = 'KeyDecodeError';
  }
}

export interface DataKeyParts {
  readonly partition: number;
  readonly bucket: string;
  readonly key: string;
}

export interface HintKeyParts extends DataKeyParts {
  /** The node that owns the write and should receive it. */
  readonly target: string;
}

/** An inclusive lower and exclusive upper bound, as StorageEngine ranges take them. */
export interface KeyRange {
  readonly gte: Uint8Array;
  readonly lt: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function dataKey(partition: number, bucket: string, key: string): Uint8Array {
  return concatBytes([Uint8Array.of(KEY_KIND.data), partitionAndName(partition, bucket, key)]);
}

export function decodeDataKey(bytes: Uint8Array): DataKeyParts {
  if (bytes[0] !== KEY_KIND.data) throw new KeyDecodeError('not a data key');
  return decodePartitionAndName(bytes, 1);
}

export function partitionDataRange(partition: number): KeyRange {
  assertPartition(partition);
  const gte = partitionPrefix(KEY_KIND.data, partition);
  // The last partition's range ends where the next kind begins.
  const lt = partition === PARTITION_MAX ? Uint8Array.of(KEY_KIND.data + 1) : partitionPrefix(KEY_KIND.data, partition + 1);
  return { gte, lt };
}

export function hintKey(target: string, partition: number, bucket: string, key: string): Uint8Array {
  return concatBytes([hintTargetPrefix(target), partitionAndName(partition, bucket, key)]);
}

export function decodeHintKey(bytes: Uint8Array): HintKeyParts {
  if (bytes[0] !== KEY_KIND.hint) throw new KeyDecodeError('not a hint key');
  const targetLength = bytes[1];
  if (targetLength === undefined || targetLength === 0) throw new KeyDecodeError('missing hint target');
  const targetEnd = 2 + targetLength;
  if (targetEnd > bytes.length) throw new KeyDecodeError('hint target longer than the key');
  const target = utf8(bytes.subarray(2, targetEnd));
  return { target, ...decodePartitionAndName(bytes, targetEnd) };
}

/** Every hint waiting for `target`. */
export function hintRangeForTarget(target: string): KeyRange {
  const gte = hintTargetPrefix(target);
  // A target prefix ends in UTF-8 bytes, never 0xff, so it always has a successor.
  return { gte, lt: prefixSuccessor(gte)! };
}

/** The hints waiting for `target` in one partition. */
export function hintRangeForTargetPartition(target: string, partition: number): KeyRange {
  assertPartition(partition);
  const prefix = hintTargetPrefix(target);
  const gte = concatBytes([prefix, uint32(partition)]);
  return { gte, lt: prefixSuccessor(gte)! };
}

/** Every hint for every target. */
export function allHintsRange(): KeyRange {
  return { gte: Uint8Array.of(KEY_KIND.hint), lt: Uint8Array.of(KEY_KIND.hint + 1) };
}

export function metaKey(name: string): Uint8Array {
  if (name.length === 0) throw new TypeError('metadata name must not be empty');
  return concatBytes([Uint8Array.of(KEY_KIND.meta), encodeString(name, 'metadata name')]);
}

export function bucketPropsKey(bucket: string): Uint8Array {
  if (bucket.length === 0) throw new TypeError('bucket must not be empty');
  return concatBytes([Uint8Array.of(KEY_KIND.bucketProps), encodeString(bucket, 'bucket')]);
}

export function decodeBucketPropsKey(bytes: Uint8Array): string {
  if (bytes[0] !== KEY_KIND.bucketProps) throw new KeyDecodeError('not a bucket properties key');
  if (bytes.length < 2) throw new KeyDecodeError('missing bucket');
  return utf8(bytes.subarray(1));
}

/** Every bucket-properties record. */
export function bucketPropsRange(): KeyRange {
  return { gte: Uint8Array.of(KEY_KIND.bucketProps), lt: Uint8Array.of(KEY_KIND.bucketProps + 1) };
}

function hintTargetPrefix(target: string): Uint8Array {
  const targetBytes = encodeString(target, 'hint target');
  if (targetBytes.length === 0 || targetBytes.length > NODE_ID_BYTES_MAX) {
    throw new RangeError(`hint target must be 1..${NODE_ID_BYTES_MAX} UTF-8 bytes`);
  }
  return concatBytes([Uint8Array.of(KEY_KIND.hint, targetBytes.length), targetBytes]);
}

function partitionPrefix(kind: number, partition: number): Uint8Array {
  return concatBytes([Uint8Array.of(kind), uint32(partition)]);
}

/** [partition u32 BE][bucket length u16 BE][bucket][key], shared by data and hint keys. */
function partitionAndName(partition: number, bucket: string, key: string): Uint8Array {
  assertPartition(partition);
  const bucketBytes = encodeString(bucket, 'bucket');
  if (bucketBytes.length > BUCKET_BYTES_MAX) throw new RangeError(`bucket longer than ${BUCKET_BYTES_MAX} UTF-8 bytes`);
  const keyBytes = encodeString(key, 'key');
  const result = new Uint8Array(6 + bucketBytes.length + keyBytes.length);
  const view = new DataView(result.buffer);
  view.setUint32(0, partition);
  view.setUint16(4, bucketBytes.length);
  result.set(bucketBytes, 6);
  result.set(keyBytes, 6 + bucketBytes.length);
  return result;
}

function decodePartitionAndName(bytes: Uint8Array, offset: number): DataKeyParts {
  if (bytes.length < offset + 6) throw new KeyDecodeError('truncated before the bucket');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const partition = view.getUint32(offset);
  const bucketLength = view.getUint16(offset + 4);
  const bucketStart = offset + 6;
  const keyStart = bucketStart + bucketLength;
  if (keyStart > bytes.length) throw new KeyDecodeError('bucket longer than the key');
  return { partition, bucket: utf8(bytes.subarray(bucketStart, keyStart)), key: utf8(bytes.subarray(keyStart)) };
}

function uint32(value: number): Uint8Array {
  const result = new Uint8Array(4);
  new DataView(result.buffer).setUint32(0, value);
  return result;
}

function assertPartition(partition: number): void {
  if (!Number.isInteger(partition) || partition < 0 || partition > PARTITION_MAX) {
    throw new RangeError(`partition must be an integer in 0..${PARTITION_MAX}, got ${partition}`);
  }
}

/** A high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function encodeString(text: string, what: string): Uint8Array {
  if (typeof text !== 'string' || LONE_SURROGATE.test(text)) throw new TypeError(`${what} must be a well-formed string`);
  return encoder.encode(text);
}

function utf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new KeyDecodeError('invalid UTF-8');
  }
}
