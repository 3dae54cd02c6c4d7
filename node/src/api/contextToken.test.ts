/**
 * The context token: round-trips every vector, and refuses anything this cluster did not issue
 * (other secret, any flipped bit, truncation, junk) with CONTEXT_INVALID, never another error.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { ContextCodec, CONTEXT_MAC_BYTES } from './contextToken';
import { DynamoError } from './errors';

const SECRET = 'unit-test-secret-0123456789';
const codec = new ContextCodec(SECRET);

const vectors = fc.dictionary(
  fc.stringMatching(/^[a-z0-9-]{1,12}$/),
  fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  { maxKeys: 8 },
);

function expectInvalid(token: string) {
  let caught: unknown;
  try {
    codec.decode(token);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DynamoError);
  expect((caught as DynamoError).code).toBe('CONTEXT_INVALID');
}

test('encode then decode returns the same vector, as a base64url token', () => {
  fc.assert(
    fc.property(vectors, (vector) => {
      const token = codec.encode(vector);
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(codec.decode(token)).toEqual(vector);
    }),
  );
});

test('an absent or empty header is the empty context', () => {
  expect(codec.decode(undefined)).toEqual({});
  expect(codec.decode('')).toEqual({});
});

test('a token from a cluster with another secret is refused', () => {
  const other = new ContextCodec('another-secret-0123456789');
  expectInvalid(other.encode({ n1: 3 }));
});

test('flipping any single bit of a token is detected', () => {
  const bytes = Buffer.from(codec.encode({ n1: 7, n2: 300 }), 'base64url');
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const copy = Buffer.from(bytes);
      copy[i]! ^= 1 << bit;
      expectInvalid(copy.toString('base64url'));
    }
  }
});

test('every truncation of a token is refused', () => {
  const token = codec.encode({ n1: 7, n2: 300 });
  for (let length = 1; length < token.length; length++) expectInvalid(token.slice(0, length));
});

test('junk, padding and characters outside base64url are refused', () => {
  fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 200 }), (junk) => expectInvalid(junk)));
  for (const token of ['====', 'AQ==', 'a+b/', ' ', 'A'.repeat(10000)]) expectInvalid(token);
});

test('a correctly signed payload that core cannot decode is still CONTEXT_INVALID', () => {
  // Signed with the real secret following the documented layout, so only decodeContext fails.
  const sign = (payload: Buffer) => Buffer.concat([payload, createHmac('sha256', SECRET).update(payload).digest().subarray(0, CONTEXT_MAC_BYTES)]).toString('base64url');
  expect(codec.decode(sign(Buffer.from([1, 0])))).toEqual({});
  expectInvalid(sign(Buffer.from([2, 0])));
  expectInvalid(sign(Buffer.from([1, 1, 2, 0x6e, 0x31, 0])));
});

test('secrets shorter than 16 bytes are refused at construction', () => {
  expect(() => new ContextCodec('short')).toThrow(RangeError);
});

test('remembered tokens: the same vector gives the same token, and a token verifies to a frozen copy that later changes do not reach', () => {
  const fresh = new ContextCodec(SECRET);
  const vector: Record<string, number> = { n1: 4, n2: 9 };
  const token = fresh.encode(vector);
  expect(fresh.encode({ n2: 9, n1: 4 })).toBe(token);
  vector.n1 = 5;
  const decoded = fresh.decode(token);
  expect(decoded).toEqual({ n1: 4, n2: 9 });
  expect(Object.isFrozen(decoded)).toBe(true);
  // A codec that never issued it verifies it by its MAC, to the same vector.
  expect(new ContextCodec(SECRET).decode(token)).toEqual({ n1: 4, n2: 9 });
});

test('a refused token is refused every time: only tokens that verified are remembered', () => {
  const token = codec.encode({ n1: 1 });
  const forged = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
  expectInvalid(forged);
  expectInvalid(forged);
  expect(codec.decode(token)).toEqual({ n1: 1 });
});
