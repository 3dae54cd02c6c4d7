/**
 * The key layout: encodings round-trip, and every record of a partition (or of a hint target)
 * falls in that partition's (target's) range and in no other, for arbitrary Unicode names. These
 * properties are what make handoff, anti-entropy and partition drops single range operations.
 */
import fc from 'fast-check';
import { compareBytes } from './bytes';
import {
  KeyDecodeError,
  PARTITION_MAX,
  allHintsRange,
  bucketPropsKey,
  bucketPropsRange,
  dataKey,
  decodeBucketPropsKey,
  decodeDataKey,
  decodeHintKey,
  hintKey,
  hintRangeForTarget,
  hintRangeForTargetPartition,
  metaKey,
  partitionDataRange,
  type KeyRange,
} from './keys';

const inRange = (key: Uint8Array, range: KeyRange): boolean => compareBytes(range.gte, key) <= 0 && compareBytes(key, range.lt) < 0;

const name = fc.string({ unit: 'binary', maxLength: 40 });
const bucket = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 });
const target = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).filter((t) => new TextEncoder().encode(t).length <= 255);
// Small partitions collide often (so neighbours are tested), and the edges are included.
const partition = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: PARTITION_MAX }), fc.constant(PARTITION_MAX), fc.constant(PARTITION_MAX - 1));

describe('data keys', () => {
  test('dataKey round-trips through decodeDataKey', () => {
    fc.assert(
      fc.property(partition, name, name, (p, b, k) => {
        expect(decodeDataKey(dataKey(p, b, k))).toEqual({ partition: p, bucket: b, key: k });
      }),
    );
  });

  test('every data key of partition p is inside partitionDataRange(p) and outside every other partition range', () => {
    fc.assert(
      fc.property(partition, partition, name, name, (p, other, b, k) => {
        const key = dataKey(p, b, k);
        expect(inRange(key, partitionDataRange(p))).toBe(true);
        if (other !== p) expect(inRange(key, partitionDataRange(other))).toBe(false);
        for (const neighbour of [p - 1, p + 1]) {
          if (neighbour >= 0 && neighbour <= PARTITION_MAX) expect(inRange(key, partitionDataRange(neighbour))).toBe(false);
        }
      }),
    );
  });

  test('different (bucket, key) pairs never share a data key, even when their concatenation is equal', () => {
    fc.assert(
      fc.property(name, name, name, name, (b1, k1, b2, k2) => {
        fc.pre(b1 !== b2 || k1 !== k2);
        expect(compareBytes(dataKey(3, b1, k1), dataKey(3, b2, k2))).not.toBe(0);
      }),
    );
    expect(compareBytes(dataKey(0, 'ab', 'c'), dataKey(0, 'a', 'bc'))).not.toBe(0);
  });

  test('partition ranges of all kinds stay inside the data kind and the last one ends at the next kind', () => {
    expect([...partitionDataRange(PARTITION_MAX).lt]).toEqual([0x02]);
    expect([...partitionDataRange(0).gte]).toEqual([0x01, 0, 0, 0, 0]);
    expect(inRange(hintKey('n1', 0, 'b', 'k'), partitionDataRange(PARTITION_MAX))).toBe(false);
  });

  test('malformed data keys are refused with KeyDecodeError', () => {
    const good = dataKey(7, 'bucket', 'key');
    expect(() => decodeDataKey(Uint8Array.of())).toThrow(KeyDecodeError);
    expect(() => decodeDataKey(Uint8Array.of(0x02, ...good.subarray(1)))).toThrow(KeyDecodeError);
    for (let length = 1; length < 7 + 'bucket'.length; length++) {
      expect(() => decodeDataKey(good.subarray(0, length))).toThrow(KeyDecodeError);
    }
    const badUtf8 = Uint8Array.of(...good.subarray(0, 7 + 'bucket'.length), 0xff);
    expect(() => decodeDataKey(badUtf8)).toThrow(KeyDecodeError);
  });

  test('strings with lone surrogates and out-of-range partitions are refused', () => {
    expect(() => dataKey(0, 'b', 'bad\uD800')).toThrow(TypeError);
    expect(() => dataKey(0, '\uDC00', 'k')).toThrow(TypeError);
    expect(() => dataKey(-1, 'b', 'k')).toThrow(RangeError);
    expect(() => dataKey(PARTITION_MAX + 1, 'b', 'k')).toThrow(RangeError);
    expect(() => dataKey(1.5, 'b', 'k')).toThrow(RangeError);
    expect(() => dataKey(0, 'x'.repeat(0x10000), 'k')).toThrow(RangeError);
  });
});

describe('hint keys', () => {
  test('hintKey round-trips through decodeHintKey', () => {
    fc.assert(
      fc.property(target, partition, name, name, (t, p, b, k) => {
        expect(decodeHintKey(hintKey(t, p, b, k))).toEqual({ target: t, partition: p, bucket: b, key: k });
      }),
    );
  });

  test('hints for one target form one range, split into one range per partition', () => {
    fc.assert(
      fc.property(target, target, partition, partition, name, name, (t, otherTarget, p, otherPartition, b, k) => {
        const key = hintKey(t, p, b, k);
        expect(inRange(key, allHintsRange())).toBe(true);
        expect(inRange(key, hintRangeForTarget(t))).toBe(true);
        expect(inRange(key, hintRangeForTargetPartition(t, p))).toBe(true);
        if (otherTarget !== t) expect(inRange(key, hintRangeForTarget(otherTarget))).toBe(false);
        if (otherPartition !== p) expect(inRange(key, hintRangeForTargetPartition(t, otherPartition))).toBe(false);
        expect(inRange(key, partitionDataRange(p))).toBe(false);
      }),
    );
  });

  test('a target that is a prefix of another gets a separate range', () => {
    expect(inRange(hintKey('n10', 0, 'b', 'k'), hintRangeForTarget('n1'))).toBe(false);
    expect(inRange(hintKey('n1', 0, 'b', 'k'), hintRangeForTarget('n10'))).toBe(false);
  });

  test('empty or over-long targets are refused, and malformed hint keys too', () => {
    expect(() => hintKey('', 0, 'b', 'k')).toThrow(RangeError);
    expect(() => hintKey('x'.repeat(256), 0, 'b', 'k')).toThrow(RangeError);
    expect(() => decodeHintKey(Uint8Array.of(0x02))).toThrow(KeyDecodeError);
    expect(() => decodeHintKey(Uint8Array.of(0x02, 10, 0x61))).toThrow(KeyDecodeError);
    expect(() => decodeHintKey(dataKey(0, 'b', 'k'))).toThrow(KeyDecodeError);
  });
});

describe('metadata and bucket property keys', () => {
  test('each kind has its own first byte, so kinds never mix', () => {
    expect(metaKey('ring')[0]).toBe(0x03);
    expect(bucketPropsKey('b')[0]).toBe(0x04);
    expect(inRange(bucketPropsKey('b'), bucketPropsRange())).toBe(true);
    expect(inRange(metaKey('b'), bucketPropsRange())).toBe(false);
  });

  test('bucket property keys round-trip', () => {
    fc.assert(
      fc.property(bucket, (b) => {
        expect(decodeBucketPropsKey(bucketPropsKey(b))).toBe(b);
      }),
    );
  });
});
