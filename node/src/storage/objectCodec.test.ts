/**
 * The stored-object codec: arbitrary well-formed objects round-trip to equal objects and to the
 * same bytes, and the decoder rejects, with CorruptObjectError, every single-byte change and
 * every truncation of an encoding, plus hand-made encodings that carry a valid checksum but
 * impossible contents (so the structural checks are reached, not only the checksum).
 */
import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import { compareDots } from '../core/dvv';
import type { Sibling, VersionedObject } from '../core/version';
import { CorruptObjectError, OBJECT_FORMAT_V1, decodeObject, encodeObject } from './objectCodec';

const nodeId = fc.oneof(fc.constantFrom('n1', 'n2', 'node-10', 'dynamokv-0'), fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }));
const counter = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const millis = fc.oneof(fc.integer({ min: 0, max: 2 ** 42 }), fc.constantFrom(0, Number.MAX_SAFE_INTEGER));

function siblingFor(dot: { node: string; counter: number }): fc.Arbitrary<Sibling> {
  return fc.record({
    dot: fc.constant(dot),
    value: fc.uint8Array({ maxLength: 64 }),
    contentType: fc.oneof(fc.constantFrom('application/octet-stream', 'text/plain; charset=utf-8', ''), fc.string({ unit: 'binary', maxLength: 20 })),
    lastModifiedMs: millis,
    deleted: fc.boolean(),
  });
}

/** Well-formed objects: every dot is covered by the context, dots are unique and sorted. */
const versionedObject: fc.Arbitrary<VersionedObject> = fc.uniqueArray(nodeId, { maxLength: 5 }).chain((nodes) =>
  fc.tuple(...nodes.map(() => counter)).chain((counters) => {
    const context = Object.fromEntries(nodes.map((node, i) => [node, counters[i]!]));
    const dot = nodes.length === 0 ? fc.constant(undefined) : fc.integer({ min: 0, max: nodes.length - 1 }).chain((i) => fc.integer({ min: 1, max: counters[i]! }).map((c) => ({ node: nodes[i]!, counter: c })));
    const dots = fc.uniqueArray(dot, { maxLength: 4, selector: (d) => (d === undefined ? '' : `${d.node}\u0000${d.counter}`) });
    return dots.chain((list) => {
      const defined = list.filter((d) => d !== undefined).sort(compareDots);
      return fc.tuple(...defined.map(siblingFor)).map((siblings) => ({ context, siblings }));
    });
  }),
);

const sample: VersionedObject = {
  context: { n1: 3, n2: 1, 'node-ü': 70000 },
  siblings: [
    { dot: { node: 'n1', counter: 3 }, value: new TextEncoder().encode('hello'), contentType: 'text/plain', lastModifiedMs: 1_764_000_000_000, deleted: false },
    { dot: { node: 'n2', counter: 1 }, value: new Uint8Array(0), contentType: 'application/octet-stream', lastModifiedMs: 1_764_000_000_123, deleted: true },
    { dot: { node: 'node-ü', counter: 69999 }, value: Uint8Array.of(0, 255, 128), contentType: '', lastModifiedMs: 0, deleted: false },
  ],
};

/** Appends the CRC-32 the decoder expects, so hand-made bodies pass the checksum. */
function withChecksum(body: number[]): Uint8Array {
  const bytes = Uint8Array.from(body);
  const result = new Uint8Array(bytes.length + 4);
  result.set(bytes);
  new DataView(result.buffer).setUint32(bytes.length, crc32(bytes));
  return result;
}

// One context entry "a" -> 1 and one sibling (a, 1), content type "", lastModified 5, value "x".
const VALID_BODY = [OBJECT_FORMAT_V1, 1, 1, 0x61, 1, 1, 0, 1, 0, 5, 0, 1, 0x78];

function expectCorrupt(bytes: Uint8Array, reason: RegExp): void {
  let caught: unknown;
  try {
    decodeObject(bytes);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(CorruptObjectError);
  expect((caught as CorruptObjectError).reason).toMatch(reason);
}

describe('object codec', () => {
  test('arbitrary well-formed objects round-trip to an equal object and re-encode to the same bytes', () => {
    fc.assert(
      fc.property(versionedObject, (object) => {
        const encoded = encodeObject(object);
        const decoded = decodeObject(encoded);
        expect(decoded).toEqual(object);
        expect([...encodeObject(decoded)]).toEqual([...encoded]);
      }),
      { numRuns: 300 },
    );
  });

  test('the sample round-trips and starts with the format byte', () => {
    const encoded = encodeObject(sample);
    expect(encoded[0]).toBe(OBJECT_FORMAT_V1);
    expect(decodeObject(encoded)).toEqual(sample);
  });

  test('a node id named __proto__ stays plain data', () => {
    const object: VersionedObject = { context: Object.fromEntries([['__proto__', 2]]), siblings: [] };
    const decoded = decodeObject(encodeObject(object));
    expect(Object.keys(decoded.context)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(decoded.context)).toBe(Object.prototype);
  });

  test('every single-byte change of the sample encoding is rejected', () => {
    const encoded = encodeObject(sample);
    // Collected rather than asserted one by one: ~30k expect() calls would dominate the run.
    const notRejected: string[] = [];
    for (let position = 0; position < encoded.length; position++) {
      for (let mask = 1; mask < 256; mask++) {
        const changed = encoded.slice();
        changed[position] = changed[position]! ^ mask;
        try {
          decodeObject(changed);
          notRejected.push(`byte ${position} ^ ${mask}: accepted`);
        } catch (error) {
          if (!(error instanceof CorruptObjectError)) notRejected.push(`byte ${position} ^ ${mask}: ${String(error)}`);
        }
      }
    }
    expect(notRejected).toEqual([]);
  });

  test('every truncation of the sample encoding is rejected', () => {
    const encoded = encodeObject(sample);
    for (let length = 0; length < encoded.length; length++) {
      expect(() => decodeObject(encoded.subarray(0, length))).toThrow(CorruptObjectError);
    }
  });

  test('the hand-made reference body decodes, so the cases below fail for their stated reason', () => {
    expect(decodeObject(withChecksum(VALID_BODY))).toEqual({
      context: { a: 1 },
      siblings: [{ dot: { node: 'a', counter: 1 }, value: Uint8Array.of(0x78), contentType: '', lastModifiedMs: 5, deleted: false }],
    });
  });

  test('structurally impossible encodings with a valid checksum are rejected with a reason', () => {
    expectCorrupt(withChecksum([0x01, ...VALID_BODY.slice(1)]), /format byte/);
    expectCorrupt(withChecksum([...VALID_BODY, 0]), /trailing/);
    // A context count of 2^35 in six varint bytes: refused before anything is allocated.
    expectCorrupt(withChecksum([OBJECT_FORMAT_V1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), /impossible context entry count/);
    expectCorrupt(withChecksum([...VALID_BODY.slice(0, 11), 0xff, 0xff, 0x03, 0x78]), /value length .* exceeds/);
    expectCorrupt(withChecksum([...VALID_BODY.slice(0, 6), 7, ...VALID_BODY.slice(7)]), /dot names context entry 7/);
    expectCorrupt(withChecksum([...VALID_BODY.slice(0, 7), 2, ...VALID_BODY.slice(8)]), /invariant broken/);
    expectCorrupt(withChecksum([...VALID_BODY.slice(0, 10), 0x02, ...VALID_BODY.slice(11)]), /unknown sibling flags/);
    expectCorrupt(withChecksum([...VALID_BODY.slice(0, 4), 0, ...VALID_BODY.slice(5)]), /invariant broken/);
    expectCorrupt(withChecksum([...VALID_BODY.slice(0, 4), 0x81, 0x00, ...VALID_BODY.slice(5)]), /overlong/);
    expectCorrupt(withChecksum([OBJECT_FORMAT_V1, 1, 1, 0xff, 1, 0]), /not valid UTF-8/);
    expectCorrupt(withChecksum([OBJECT_FORMAT_V1, 2, 1, 0x62, 1, 1, 0x61, 1, 0]), /not strictly ascending/);
    expectCorrupt(withChecksum([OBJECT_FORMAT_V1, 1, 0, 1, 1, 0]), /impossible context entry count|empty context node id/);
    expectCorrupt(withChecksum([OBJECT_FORMAT_V1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), /varint longer/);
    expectCorrupt(Uint8Array.of(OBJECT_FORMAT_V1, 0, 0), /truncated/);
  });

  test('the encoder refuses objects that break the invariants instead of storing them', () => {
    const uncovered: VersionedObject = { context: { n1: 1 }, siblings: [{ ...sample.siblings[0]!, dot: { node: 'n1', counter: 2 } }] };
    expect(() => encodeObject(uncovered)).toThrow();
    const fractionalTime: VersionedObject = { context: { n1: 3 }, siblings: [{ ...sample.siblings[0]!, lastModifiedMs: 1.5 }] };
    expect(() => encodeObject(fractionalTime)).toThrow(RangeError);
  });
});
