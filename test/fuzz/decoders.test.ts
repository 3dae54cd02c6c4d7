/**
 * Property-based fuzzing (fast-check) of every decoder that reads bytes from outside the node,
 * about 12k cases in all:
 * - the context: core decodeContext on random bytes fails only with ContextDecodeError and
 *   accepts only canonical encodings; the API's ContextCodec on random strings, truncations and
 *   one-character edits of real tokens fails only with CONTEXT_INVALID, and no edited token is
 *   accepted as a different vector (the MAC);
 * - the peer protocol: every method's request and response decoder, the batch and error
 *   decoders, on random values, on valid messages with one field replaced by a random value, and
 *   on random bytes through msgpack, fail only with PeerDecodeError; a valid message round-trips;
 * - the stored object codec: random bytes and truncated or bit-flipped real encodings fail only
 *   with CorruptObjectError.
 * "Fail only with" is the invariant: any other exception would escape as a 500 or crash a loop.
 */
import fc from 'fast-check';
import { ContextCodec } from '../../node/src/api/contextToken';
import { DynamoError } from '../../node/src/api/errors';
import { ContextDecodeError, decodeContext, encodeContext } from '../../node/src/core/context';
import type { VersionVector, VersionedObject } from '../../node/src/core/version';
import { CorruptObjectError, decodeObject, encodeObject } from '../../node/src/storage/objectCodec';
import {
  PEER_METHODS,
  PeerDecodeError,
  decodeBatchRequest,
  decodeBatchResponse,
  decodePeerError,
  decodeRequest,
  decodeResponse,
  packMessage,
  unpackMessage,
  type PeerMethod,
} from '../../node/src/transport/peerMessages';

const codec = new ContextCodec('fuzz-context-secret-0123456789');

/** Runs `decode`; an exception must be an instance of one of `allowed`. */
function onlyThrows(decode: () => unknown, ...allowed: (abstract new (...args: never[]) => Error)[]): void {
  try {
    decode();
  } catch (error) {
    if (!allowed.some((type) => error instanceof type)) throw new Error(`unexpected ${(error as Error)?.name}: ${(error as Error)?.message}`, { cause: error });
  }
}

const nodeId = fc.stringMatching(/^[a-z0-9.]{1,12}$/);
const vectorArb: fc.Arbitrary<VersionVector> = fc.dictionary(nodeId, fc.integer({ min: 1, max: 2 ** 40 }), { maxKeys: 8 });

describe('context decoders', () => {
  test('decodeContext on random bytes: a vector that re-encodes to the same bytes, or ContextDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (bytes, withFormat) => {
        const input = withFormat && bytes.length > 0 ? Uint8Array.of(1, ...bytes.subarray(1)) : bytes;
        let vector: VersionVector;
        try {
          vector = decodeContext(input);
        } catch (error) {
          expect(error).toBeInstanceOf(ContextDecodeError);
          return;
        }
        expect(Buffer.from(encodeContext(vector))).toEqual(Buffer.from(input));
      }),
      { numRuns: 3000 },
    );
  });

  test('ContextCodec: vectors round-trip; random strings, truncations and edits fail only with CONTEXT_INVALID', () => {
    fc.assert(
      fc.property(vectorArb, (vector) => {
        expect(codec.decode(codec.encode(vector))).toEqual(vector);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.base64String({ maxLength: 200 }), fc.stringMatching(/^[A-Za-z0-9_-]{0,120}$/)), (token) => {
        onlyThrows(() => codec.decode(token), DynamoError);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(vectorArb, fc.nat(), fc.nat(), fc.boolean(), (vector, at, shift, truncate) => {
        const token = codec.encode(vector);
        const position = at % token.length;
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        const edited = truncate ? token.slice(0, position) : token.slice(0, position) + alphabet[(alphabet.indexOf(token[position]!) + 1 + (shift % 63)) % 64] + token.slice(position + 1);
        let decoded: VersionVector | undefined;
        try {
          decoded = codec.decode(edited);
        } catch (error) {
          expect(error).toBeInstanceOf(DynamoError);
          expect((error as DynamoError).code).toBe('CONTEXT_INVALID');
          return;
        }
        // An edit of the last character's unused low bits leaves the bytes (and the vector) alone;
        // an empty truncation is the empty context. Nothing else may pass the MAC.
        expect([edited === '' ? 'empty' : 'same', decoded]).toEqual([edited === '' ? 'empty' : 'same', edited === '' ? {} : vector]);
      }),
      { numRuns: 1500 },
    );
  });
});

/** One valid request per method that has a simple shape, for field-replacement fuzzing. */
const SAMPLE_REQUESTS: Partial<Record<PeerMethod, Record<string, unknown>>> = {
  ping: { from: 'n1' },
  replicate: { partition: 3, bucket: 'b', key: 'k', object: Uint8Array.of(1, 2, 3), sync: true, hintFor: 'n2' },
  read: { partition: 3, bucket: 'b', key: 'k' },
  coordinate: { bucket: 'b', key: 'k', value: Uint8Array.of(9), contentType: 'text/plain', deleted: false, lastModifiedMs: 1, context: Uint8Array.of(1, 0), w: 2, dw: 1, pw: 0, hops: 1 },
  leave: { id: 'n3' },
  aeTree: { partition: 3, branchCount: 4, leavesPerBranch: 8, branches: [0, 3] },
  aeKeys: { partition: 3, branchCount: 4, leavesPerBranch: 8, segments: [1, 31], keysMax: 10 },
  handoffBatch: { transferId: '5-3-n4', partition: 3, entries: [{ bucket: 'b', key: 'k', object: Uint8Array.of(1, 2) }], checksum: 123, cursor: Uint8Array.of(1, 0, 3), keysTotal: 10 },
  handoffStatus: { transferId: '5-3-n4' },
  handoffDone: { transferId: '5-3-n4' },
};

describe('peer protocol decoders', () => {
  test('valid sample requests round-trip through msgpack and their decoders', () => {
    for (const [method, request] of Object.entries(SAMPLE_REQUESTS) as [PeerMethod, Record<string, unknown>][]) {
      expect([method, decodeRequest[method](unpackMessage(packMessage(request)))]).toEqual([method, request]);
    }
  });

  test('random values: every request and response decoder either decodes or throws PeerDecodeError', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PEER_METHODS), fc.anything({ withTypedArray: true, maxDepth: 3 }), (method, value) => {
        const sent = unpackMessage(packMessage(value));
        onlyThrows(() => decodeRequest[method](sent), PeerDecodeError);
        onlyThrows(() => decodeResponse[method](sent), PeerDecodeError);
        onlyThrows(() => decodeBatchRequest(sent), PeerDecodeError);
        onlyThrows(() => decodeBatchResponse(sent, 2), PeerDecodeError);
        onlyThrows(() => decodePeerError(sent), PeerDecodeError);
      }),
      { numRuns: 2500 },
    );
  });

  test('valid messages with one field replaced or dropped: decoded with the field checked, or PeerDecodeError', () => {
    const methods = Object.keys(SAMPLE_REQUESTS) as PeerMethod[];
    fc.assert(
      fc.property(fc.constantFrom(...methods), fc.nat(), fc.option(fc.anything({ withTypedArray: true, maxDepth: 2 }), { nil: undefined }), fc.boolean(), (method, pick, replacement, inBatch) => {
        const sample = SAMPLE_REQUESTS[method]!;
        const fields = Object.keys(sample);
        const field = fields[pick % fields.length]!;
        const damaged = { ...sample, [field]: replacement };
        const sent = unpackMessage(packMessage(inBatch ? { calls: [{ method, request: damaged }] } : damaged));
        onlyThrows(() => (inBatch ? decodeBatchRequest(sent) : decodeRequest[method](sent)), PeerDecodeError);
      }),
      { numRuns: 2000 },
    );
  });

  test('random bytes: msgpack and the decoders refuse them with PeerDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), fc.constantFrom(...PEER_METHODS), (bytes, method) => {
        onlyThrows(() => decodeRequest[method](unpackMessage(bytes)), PeerDecodeError);
        onlyThrows(() => decodeBatchRequest(unpackMessage(bytes)), PeerDecodeError);
      }),
      { numRuns: 1500 },
    );
  });
});

describe('stored object codec', () => {
  const objectArb: fc.Arbitrary<VersionedObject> = fc
    .tuple(fc.uniqueArray(nodeId, { minLength: 1, maxLength: 4 }), fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 3 }), fc.boolean())
    .map(([nodes, values, deleted]) => ({
      context: Object.fromEntries(nodes.map((n) => [n, values.length + 2])),
      siblings: values.map((value, i) => ({ dot: { node: nodes[i % nodes.length]!, counter: i + 1 }, value, contentType: 'text/plain', lastModifiedMs: 1_700_000_000_000 + i, deleted: deleted && i === 0 })),
    }))
    .filter((object) => new Set(object.siblings.map((s) => `${s.dot.node}:${s.dot.counter}`)).size === object.siblings.length);

  test('random bytes, truncations and bit flips of real encodings fail only with CorruptObjectError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => onlyThrows(() => decodeObject(bytes), CorruptObjectError)),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(objectArb, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (object, at, mask, truncate) => {
        let encoded: Uint8Array;
        try {
          encoded = encodeObject(object);
        } catch {
          return; // The generator made an object the invariants refuse; nothing to decode.
        }
        const position = at % encoded.length;
        const damaged = truncate ? encoded.subarray(0, position) : Uint8Array.from(encoded, (b, i) => (i === position ? b ^ mask : b));
        expect(() => decodeObject(damaged)).toThrow(CorruptObjectError);
      }),
      { numRuns: 1000 },
    );
  });
});
