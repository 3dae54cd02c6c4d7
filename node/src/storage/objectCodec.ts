/**
 * The binary encoding of a stored VersionedObject (format 1):
 *
 *   [format byte 0xd1]
 *   [context entry count]   then per entry, in ascending node id order:
 *       [node id length][node id UTF-8][counter]
 *   [sibling count]         then per sibling, in dot order:
 *       [dot node: index into the context entries][dot counter]
 *       [content type length][content type UTF-8][lastModifiedMs][flags u8: bit 0 = deleted]
 *       [value length][value bytes]
 *   [CRC-32 of every byte before it, u32 BE]
 *
 * Numbers are unsigned LEB128 varints (at most 8 bytes, up to Number.MAX_SAFE_INTEGER). A dot
 * names its node by index into the context because the invariants (version.ts) say every dot is
 * covered by the context, so the node is always there; that keeps siblings small.
 *
 * The decoder trusts nothing: it checks the format byte and checksum first, then checks every
 * length and count against the bytes that remain before it allocates or slices, rejects
 * trailing bytes, and finally checks the object's invariants. Every failure is a
 * CorruptObjectError with a reason. Decoded values are views into the input bytes (no copy), so
 * the input must not be reused by the caller afterwards.
 */
import { crc32 } from 'node:zlib';
import { assertWellFormed } from '../core/dvv';
import type { Sibling, VersionVector, VersionedObject } from '../core/version';

export const OBJECT_FORMAT_V1 = 0xd1;

const CHECKSUM_BYTES = 4;
const VARINT_BYTES_MAX = 8;
const FLAG_DELETED = 0x01;
/** The smallest possible encodings, used to reject impossible counts before allocating. */
const CONTEXT_ENTRY_BYTES_MIN = 3;
const SIBLING_BYTES_MIN = 6;
/** Up to this many context entries, a dot's node is found by scanning; more get a Map. */
const NODE_INDEX_SCAN_MAX = 16;

export class CorruptObjectError extends Error {
  constructor(readonly reason: string) {
    super(`corrupt stored object: ${reason}`);
    this.name = 'CorruptObjectError';
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function encodeObject(object: VersionedObject): Uint8Array {
  assertWellFormed(object);
  const context = object.context;
  const siblings = object.siblings;
  const nodes = Object.keys(context);
  if (nodes.length > 1) nodes.sort();
  const nodeIndex = nodeIndexer(nodes);

  let size = 1 + varintSize(nodes.length) + varintSize(siblings.length) + CHECKSUM_BYTES;
  for (const node of nodes) {
    if (node === '') throw new RangeError('context node ids must not be empty');
    size += lengthPrefixedSize(utf8Length(node)) + varintSize(context[node]!);
  }
  for (const sibling of siblings) {
    assertMillis(sibling.lastModifiedMs);
    size += varintSize(nodeIndex(sibling.dot.node)) + varintSize(sibling.dot.counter);
    size += lengthPrefixedSize(utf8Length(sibling.contentType)) + varintSize(sibling.lastModifiedMs) + 1;
    size += lengthPrefixedSize(sibling.value.length);
  }

  const writer = new Writer(size);
  writer.byte(OBJECT_FORMAT_V1);
  writer.varint(nodes.length);
  for (const node of nodes) {
    writer.text(node);
    writer.varint(context[node]!);
  }
  writer.varint(siblings.length);
  for (const sibling of siblings) {
    writer.varint(nodeIndex(sibling.dot.node));
    writer.varint(sibling.dot.counter);
    writer.text(sibling.contentType);
    writer.varint(sibling.lastModifiedMs);
    writer.byte(sibling.deleted ? FLAG_DELETED : 0);
    writer.lengthPrefixed(sibling.value);
  }
  writer.uint32(crc32(writer.bytes.subarray(0, writer.offset)));
  if (writer.offset !== size) throw new Error(`object encoder sized ${size} bytes but wrote ${writer.offset}`);
  // A plain Uint8Array, not the Buffer: Buffer#slice shares memory where Uint8Array#slice copies,
  // and callers treat the result as a Uint8Array.
  return new Uint8Array(writer.bytes.buffer, writer.bytes.byteOffset, writer.bytes.byteLength);
}

/** Position of a dot's node in the sorted context: a scan for the usual few nodes, a Map beyond. */
function nodeIndexer(nodes: readonly string[]): (node: string) => number {
  if (nodes.length <= NODE_INDEX_SCAN_MAX) return (node) => nodes.indexOf(node);
  const index = new Map(nodes.map((node, i) => [node, i]));
  return (node) => index.get(node) ?? -1;
}

function lengthPrefixedSize(length: number): number {
  return varintSize(length) + length;
}

/** UTF-8 byte length of a string; ids and content types are ASCII, where it is the length. */
function utf8Length(text: string): number {
  return isAscii(text) ? text.length : Buffer.byteLength(text, 'utf8');
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

/**
 * The cheap half of decodeObject: the format byte and the checksum. Code that passes stored bytes
 * on without decoding them (handoff) uses it so corrupt bytes never leave the node.
 */
export function hasValidChecksum(bytes: Uint8Array): boolean {
  if (bytes.length < 1 + CHECKSUM_BYTES || bytes[0] !== OBJECT_FORMAT_V1) return false;
  const bodyEnd = bytes.length - CHECKSUM_BYTES;
  return crc32(bytes.subarray(0, bodyEnd)) === new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(bodyEnd);
}

export function decodeObject(bytes: Uint8Array): VersionedObject {
  if (!(bytes instanceof Uint8Array)) throw new CorruptObjectError('not a byte array');
  if (bytes.length < 1 + CHECKSUM_BYTES) throw new CorruptObjectError(`truncated: ${bytes.length} bytes`);
  if (bytes[0] !== OBJECT_FORMAT_V1) throw new CorruptObjectError(`unknown format byte 0x${bytes[0]!.toString(16)}`);
  const bodyEnd = bytes.length - CHECKSUM_BYTES;
  const stored = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(bodyEnd);
  if (crc32(bytes.subarray(0, bodyEnd)) !== stored) throw new CorruptObjectError('checksum mismatch');

  const reader = new Reader(bytes, 1, bodyEnd);
  const contextCount = reader.count(CONTEXT_ENTRY_BYTES_MIN, 'context entry');
  const entries: [string, number][] = [];
  for (let i = 0; i < contextCount; i++) {
    const node = reader.string('node id');
    if (node === '') throw new CorruptObjectError('empty context node id');
    const previous = entries[i - 1];
    if (previous !== undefined && !(previous[0] < node)) throw new CorruptObjectError('context node ids not strictly ascending');
    entries.push([node, reader.varint('context counter')]);
  }
  const siblingCount = reader.count(SIBLING_BYTES_MIN, 'sibling');
  const siblings: Sibling[] = [];
  for (let i = 0; i < siblingCount; i++) {
    const index = reader.varint('dot node index');
    const entry = entries[index];
    if (entry === undefined) throw new CorruptObjectError(`dot names context entry ${index} of ${entries.length}`);
    const counter = reader.varint('dot counter');
    const contentType = reader.string('content type');
    const lastModifiedMs = reader.varint('lastModifiedMs');
    const flags = reader.byte('flags');
    if ((flags & ~FLAG_DELETED) !== 0) throw new CorruptObjectError(`unknown sibling flags 0x${flags.toString(16)}`);
    const value = reader.bytes('value');
    siblings.push({ dot: { node: entry[0], counter }, value, contentType, lastModifiedMs, deleted: (flags & FLAG_DELETED) !== 0 });
  }
  if (reader.offset !== bodyEnd) throw new CorruptObjectError(`${bodyEnd - reader.offset} trailing bytes`);

  // fromEntries defines own properties, so even a node id like "__proto__" stays plain data.
  const context: VersionVector = Object.fromEntries(entries);
  const object: VersionedObject = { context, siblings };
  try {
    assertWellFormed(object);
  } catch (error) {
    throw new CorruptObjectError(`invariant broken: ${error instanceof Error ? error.message : String(error)}`);
  }
  return object;
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

function assertMillis(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`lastModifiedMs must be a non-negative safe integer, got ${value}`);
}

/**
 * Writes into a buffer sized beforehand. It comes from Buffer.allocUnsafe: Node's pool makes a
 * ~1 KiB allocation about six times cheaper than a zero-filled Uint8Array, which showed on every
 * write. Every byte is written before it is returned (encodeObject checks the final offset), so
 * no stale pool memory can leak into a stored object.
 */
class Writer {
  readonly bytes: Buffer;
  offset = 0;

  constructor(size: number) {
    this.bytes = Buffer.allocUnsafe(size);
  }

  byte(value: number): void {
    this.bytes[this.offset++] = value;
  }

  varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`cannot encode ${value} as an unsigned varint`);
    while (value >= 0x80) {
      this.bytes[this.offset++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.bytes[this.offset++] = value;
  }

  lengthPrefixed(part: Uint8Array): void {
    this.varint(part.length);
    this.bytes.set(part, this.offset);
    this.offset += part.length;
  }

  /** [varint length][UTF-8]; ASCII is copied character by character, anything else encoded. */
  text(value: string): void {
    if (!isAscii(value)) {
      this.varint(Buffer.byteLength(value, 'utf8'));
      this.offset += this.bytes.write(value, this.offset, 'utf8');
      return;
    }
    this.varint(value.length);
    for (let i = 0; i < value.length; i++) this.bytes[this.offset++] = value.charCodeAt(i);
  }

  uint32(value: number): void {
    this.bytes.writeUInt32BE(value, this.offset);
    this.offset += 4;
  }
}

/** Reads within [offset, end) and throws CorruptObjectError instead of running past `end`. */
class Reader {
  constructor(
    private readonly source: Uint8Array,
    public offset: number,
    private readonly end: number,
  ) {}

  byte(what: string): number {
    if (this.offset >= this.end) throw new CorruptObjectError(`truncated in ${what}`);
    return this.source[this.offset++]!;
  }

  varint(what: string): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      const byte = this.byte(what);
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (byte === 0 && i > 0) throw new CorruptObjectError(`overlong varint in ${what}`);
        if (!Number.isSafeInteger(value)) throw new CorruptObjectError(`${what} exceeds the safe integer range`);
        return value;
      }
      scale *= 0x80;
    }
    throw new CorruptObjectError(`varint longer than ${VARINT_BYTES_MAX} bytes in ${what}`);
  }

  /** A count of items that each take at least `bytesMin`, checked against what remains. */
  count(bytesMin: number, what: string): number {
    const count = this.varint(`${what} count`);
    if (count * bytesMin > this.end - this.offset) throw new CorruptObjectError(`impossible ${what} count ${count} for ${this.end - this.offset} remaining bytes`);
    return count;
  }

  bytes(what: string): Uint8Array {
    const length = this.varint(`${what} length`);
    if (length > this.end - this.offset) throw new CorruptObjectError(`${what} length ${length} exceeds the ${this.end - this.offset} remaining bytes`);
    const result = this.source.subarray(this.offset, this.offset + length);
    this.offset += length;
    return result;
  }

  string(what: string): string {
    try {
      return decoder.decode(this.bytes(what));
    } catch (error) {
      if (error instanceof CorruptObjectError) throw error;
      throw new CorruptObjectError(`${what} is not valid UTF-8`);
    }
  }
}
