/**
 * The causal context a client carries between a read and a write: a version vector in a compact,
 * versioned binary form. The API layer wraps these bytes with a MAC and base64url; this module
 * only owns the bytes, so it stays pure.
 *
 * Layout (format 1): [format=1][varint entryCount] then per entry, node ids strictly ascending:
 * [varint idLength][id UTF-8][varint counter]. Decoding rejects anything else.
 */
import type { VersionVector } from './version';

export const CONTEXT_FORMAT_VERSION = 1;
/** A cluster never has more members than this, so a longer vector is malformed. */
export const CONTEXT_ENTRIES_MAX = 1024;
export const NODE_ID_BYTES_MAX = 255;

export class ContextDecodeError extends Error {
  constructor(reason: string) {
    super(`malformed context: ${reason}`);
    this.name = 'ContextDecodeError';
  }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeContext(vector: VersionVector): Uint8Array {
  const nodes = Object.keys(vector);
  // Vectors have a few entries; the sort is only needed when there are several.
  if (nodes.length > 1) nodes.sort();
  const bytes: number[] = [CONTEXT_FORMAT_VERSION];
  writeVarint(bytes, nodes.length);
  for (const node of nodes) {
    if (node === '__proto__') throw new RangeError('reserved node id');
    writeNodeId(bytes, node);
    writeVarint(bytes, vector[node]!);
  }
  return Uint8Array.from(bytes);
}

/**
 * [varint length][UTF-8] of a node id. Ids are nearly always ASCII, whose UTF-8 bytes are the
 * character codes: writing them directly saves a TextEncoder call per id on every request.
 */
function writeNodeId(out: number[], node: string): void {
  let ascii = node.length > 0 && node.length <= NODE_ID_BYTES_MAX;
  for (let i = 0; ascii && i < node.length; i++) ascii = node.charCodeAt(i) < 0x80;
  if (ascii) {
    writeVarint(out, node.length);
    for (let i = 0; i < node.length; i++) out.push(node.charCodeAt(i));
    return;
  }
  const id = utf8Encoder.encode(node);
  if (id.length === 0 || id.length > NODE_ID_BYTES_MAX) throw new RangeError(`node id length ${id.length} out of range`);
  writeVarint(out, id.length);
  for (const b of id) out.push(b);
}

export function decodeContext(bytes: Uint8Array): VersionVector {
  const reader = new Reader(bytes);
  const format = reader.byte();
  if (format !== CONTEXT_FORMAT_VERSION) throw new ContextDecodeError(`unknown format ${format}`);
  const count = reader.varint();
  if (count > CONTEXT_ENTRIES_MAX) throw new ContextDecodeError(`too many entries (${count})`);
  const vector: Record<string, number> = {};
  let previous: string | undefined;
  for (let i = 0; i < count; i++) {
    const idLength = reader.varint();
    if (idLength === 0 || idLength > NODE_ID_BYTES_MAX) throw new ContextDecodeError('bad node id length');
    const node = reader.utf8(idLength);
    if (previous !== undefined && node <= previous) throw new ContextDecodeError('node ids not strictly ascending');
    // Vectors are plain objects, where this one key would set the prototype instead of an entry.
    // No actor is called that (node ids start with a letter or digit), so it is refused.
    if (node === '__proto__') throw new ContextDecodeError('reserved node id');
    const counter = reader.varint();
    if (counter < 1) throw new ContextDecodeError('counter must be positive');
    vector[node] = counter;
    previous = node;
  }
  if (!reader.atEnd()) throw new ContextDecodeError('trailing bytes');
  return vector;
}

/** Unsigned LEB128, limited to safe integers. */
function writeVarint(out: number[], value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

class Reader {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  byte(): number {
    const b = this.bytes[this.offset];
    if (b === undefined) throw new ContextDecodeError('truncated');
    this.offset++;
    return b;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    // Eight 7-bit groups reach 2^56, beyond Number.MAX_SAFE_INTEGER; a longer varint is malformed.
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(value)) throw new ContextDecodeError('integer too large');
        if (i > 0 && b === 0) throw new ContextDecodeError('non-canonical integer');
        return value;
      }
      scale *= 0x80;
    }
    throw new ContextDecodeError('integer too long');
  }

  utf8(length: number): string {
    if (this.offset + length > this.bytes.length) throw new ContextDecodeError('truncated');
    const slice = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    try {
      return utf8Decoder.decode(slice);
    } catch {
      throw new ContextDecodeError('node id is not UTF-8');
    }
  }

  atEnd(): boolean {
    return this.offset === this.bytes.length;
  }
}
