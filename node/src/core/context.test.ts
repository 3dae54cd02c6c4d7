/** The context codec round-trips every vector and rejects every malformed byte string. */
import fc from 'fast-check';
import { ContextDecodeError, decodeContext, encodeContext } from './context';

// "__proto__" is no actor id (node ids start with a letter or digit) and the codec refuses it.
const vectorArb = fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }).filter((id) => id !== '__proto__'), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { maxKeys: 20 });

describe('context codec', () => {
  test('round-trips any version vector', () => {
    fc.assert(fc.property(vectorArb, (v) => expect(decodeContext(encodeContext(v))).toEqual(v)));
  });

  test('is canonical: the same vector built in any key order has the same bytes', () => {
    fc.assert(
      fc.property(vectorArb, (v) => {
        const reversed = Object.fromEntries(Object.entries(v).reverse());
        expect(encodeContext(reversed)).toEqual(encodeContext(v));
      }),
    );
  });

  test('every truncation is rejected', () => {
    const bytes = encodeContext({ alpha: 3, beta: 900, gamma: 1 });
    for (let n = 0; n < bytes.length; n++) expect(() => decodeContext(bytes.subarray(0, n))).toThrow(ContextDecodeError);
  });

  test('trailing bytes, unknown formats, unsorted ids and zero counters are rejected', () => {
    const good = encodeContext({ a: 1 });
    expect(() => decodeContext(Uint8Array.from([...good, 0]))).toThrow(ContextDecodeError);
    expect(() => decodeContext(Uint8Array.from([2, ...good.subarray(1)]))).toThrow(ContextDecodeError);
    expect(() => decodeContext(Uint8Array.from([1, 2, 1, 98, 1, 1, 97, 1]))).toThrow(/ascending/);
    expect(() => decodeContext(Uint8Array.from([1, 1, 1, 97, 0]))).toThrow(/positive/);
    expect(() => decodeContext(Uint8Array.from([1, 1, 1, 0xff, 1]))).toThrow(/UTF-8/);
    const proto = [...new TextEncoder().encode('__proto__')];
    expect(() => decodeContext(Uint8Array.from([1, 1, proto.length, ...proto, 1]))).toThrow(/reserved/);
  });

  test('random bytes either decode to a valid vector or throw ContextDecodeError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const v = decodeContext(bytes);
          expect(encodeContext(v)).toEqual(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(ContextDecodeError);
        }
      }),
    );
  });
});
