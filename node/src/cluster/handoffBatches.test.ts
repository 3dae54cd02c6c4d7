/**
 * The sender's batch helpers: reading batches that resume after a cursor and skip corrupt copies,
 * and counting a sent batch only once the receiver's cursor covers it.
 */
import { dataKey } from '../storage/keys';
import { MemoryEngine } from '../storage/memory';
import { encodeObject } from '../storage/objectCodec';
import { Unconfirmed, readBatch } from './handoffBatches';

const cursorOf = (key: string) => dataKey(1, 'b', key);
const object = encodeObject({ context: { n1: 1 }, siblings: [{ dot: { node: 'n1', counter: 1 }, value: new Uint8Array(100), contentType: 'x', lastModifiedMs: 1, deleted: false }] });

test('readBatch resumes after a cursor, stops at the key or byte limit, and skips corrupt copies while moving past them', async () => {
  const engine = new MemoryEngine();
  await engine.open();
  const corrupt = Uint8Array.from(object);
  corrupt[corrupt.length - 1]! ^= 0xff;
  for (const key of ['a', 'b', 'c', 'd']) await engine.put(cursorOf(key), key === 'b' ? corrupt : object);
  await engine.put(dataKey(2, 'b', 'other-partition'), object);
  const skipped: string[] = [];
  const limits = { batchKeysMax: 3, batchBytesMax: 1 << 20 };
  const first = (await readBatch(engine, 1, null, limits, (_bucket, key) => skipped.push(key)))!;
  expect({ keys: first.entries.map((e) => e.key), cursor: first.cursor, skipped }).toEqual({ keys: ['a', 'c'], cursor: cursorOf('c'), skipped: ['b'] });
  const second = (await readBatch(engine, 1, first.cursor, limits, () => undefined))!;
  expect(second.entries.map((e) => e.key)).toEqual(['d']);
  expect(await readBatch(engine, 1, second.cursor, limits, () => undefined)).toBeUndefined();
  // The byte limit ends a batch at the entry that reaches it.
  const small = (await readBatch(engine, 1, null, { batchKeysMax: 10, batchBytesMax: 1 }, () => undefined))!;
  expect(small.entries.map((e) => e.key)).toEqual(['a']);
});

test('a sent batch counts once the receiver cursor covers it, not when an answer for a batch beyond a gap comes back', () => {
  const unconfirmed = new Unconfirmed();
  for (const key of ['c', 'f', 'i']) unconfirmed.add({ keys: 3, bytes: 300, cursor: cursorOf(key) });
  // The batch ending at "f" overtook the one ending at "c" and was applied; the receiver's cursor is still null.
  expect(unconfirmed.coveredBy(null)).toEqual([]);
  expect(unconfirmed.coveredBy(cursorOf('b'))).toEqual([]);
  // The batch ending at "c" arrives and joins both into the chain: both count now, once.
  expect(unconfirmed.coveredBy(cursorOf('f')).map((b) => b.cursor)).toEqual([cursorOf('c'), cursorOf('f')]);
  expect(unconfirmed.coveredBy(cursorOf('f'))).toEqual([]);
  expect(unconfirmed.coveredBy(cursorOf('z')).map((b) => b.cursor)).toEqual([cursorOf('i')]);
});
