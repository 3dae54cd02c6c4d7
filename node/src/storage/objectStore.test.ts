/**
 * ObjectStore over both engines: per-key serialisation of read-modify-write (no lost updates,
 * no leaked lock entries, bounded waiting), atomic extra operations, refusal to return garbage
 * for corrupt bytes, partition scans that resume, and conditional hint removal.
 */
import { StorageArgumentError, StorageClosedError, type StorageEngine } from './engine';
import { type EngineFactory, type EngineFixture, memoryEngineFactory, rocksDbEngineFactory } from './conformance';
import { dataKey, hintKey, partitionDataRange } from './keys';
import { CorruptObjectError, encodeObject } from './objectCodec';
import { ObjectStore, OverloadedError, type CorruptObjectEvent, type StoredObject } from './objectStore';
import type { VersionedObject } from '../core/version';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const str = (value: Uint8Array): string => new TextDecoder().decode(value);

/** An object holding one value written by `node` as its `counter`-th write. */
function objectWith(value: string, counter = 1, node = 'n1'): VersionedObject {
  return { context: { [node]: counter }, siblings: [{ dot: { node, counter }, value: text(value), contentType: 'text/plain', lastModifiedMs: 1000 + counter, deleted: false }] };
}

function valueOf(object: VersionedObject | undefined): string | undefined {
  return object === undefined ? undefined : str(object.siblings[0]!.value);
}

/** Increments a counter kept as the decimal value of the single sibling. */
function increment(current: VersionedObject | undefined): VersionedObject {
  const count = current === undefined ? 0 : Number(valueOf(current));
  return objectWith(String(count + 1), count + 1);
}

const STAMP = Uint8Array.of(1, 2, 3);

function describeObjectStore(name: string, factory: EngineFactory): void {
  describe(`ObjectStore over ${name}`, () => {
    let fixture: EngineFixture;
    let engine: StorageEngine;
    let store: ObjectStore;

    beforeEach(async () => {
      fixture = await factory.create();
      engine = fixture.engine;
      store = new ObjectStore(engine, { maxLockWaiters: 1000 });
    });

    afterEach(async () => {
      await fixture.dispose();
    });

    test('read answers undefined for a key never stored and the stored object after update', async () => {
      expect(await store.read(5, 'b', 'k')).toBeUndefined();
      const stored = await store.update(5, 'b', 'k', () => objectWith('v'));
      expect(valueOf(stored)).toBe('v');
      expect(await store.read(5, 'b', 'k')).toEqual(objectWith('v'));
      expect(await store.read(6, 'b', 'k')).toBeUndefined();
      expect([...(await store.readRaw(5, 'b', 'k'))!]).toEqual([...encodeObject(objectWith('v'))]);
    });

    test('100 concurrent increments of one object all apply, and the lock map is empty afterwards', async () => {
      const updates = Array.from({ length: 100 }, () => store.update(1, 'counters', 'c', increment));
      expect(store.lockedKeyCount()).toBe(1);
      const results = await Promise.all(updates);
      expect(results.map(valueOf).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 100 }, (_, i) => String(i + 1)));
      expect(valueOf(await store.read(1, 'counters', 'c'))).toBe('100');
      expect(store.lockedKeyCount()).toBe(0);
    });

    test('updates of different keys do not wait for each other and each key keeps its own count', async () => {
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.update(1, 'counters', `k${i % 4}`, increment)));
      for (let k = 0; k < 4; k++) expect(valueOf(await store.read(1, 'counters', `k${k}`))).toBe('10');
      expect(store.lockedKeyCount()).toBe(0);
    });

    test('one waiter more than maxLockWaiters on a key is refused with OverloadedError', async () => {
      const small = new ObjectStore(engine, { maxLockWaiters: 2 });
      const attempts = Array.from({ length: 4 }, () => small.update(1, 'b', 'hot', increment));
      const outcomes = await Promise.allSettled(attempts);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
      expect((outcomes[3] as PromiseRejectedResult).reason).toBeInstanceOf(OverloadedError);
      expect(valueOf(await small.read(1, 'b', 'hot'))).toBe('3');
      expect(small.lockedKeyCount()).toBe(0);
    });

    test('extraOperations are written in the same batch as the object', async () => {
      const hint = hintKey('n2', 1, 'b', 'k');
      await store.update(1, 'b', 'k', () => objectWith('v'), { sync: true, extraOperations: [{ type: 'put', key: hint, value: STAMP }] });
      expect([...(await engine.get(hint))!]).toEqual([...STAMP]);
      expect(valueOf(await store.read(1, 'b', 'k'))).toBe('v');
    });

    test('a batch that fails writes neither the object nor its extra operations, and releases the lock', async () => {
      await store.update(1, 'b', 'k', () => objectWith('old'));
      const hint = hintKey('n2', 1, 'b', 'k');
      const bad = store.update(1, 'b', 'k', () => objectWith('new', 2), { extraOperations: [{ type: 'put', key: hint, value: STAMP }, { type: 'put', key: new Uint8Array(0), value: STAMP }] });
      await expect(bad).rejects.toThrow(StorageArgumentError);
      expect(valueOf(await store.read(1, 'b', 'k'))).toBe('old');
      expect(await engine.get(hint)).toBeUndefined();
      expect(store.lockedKeyCount()).toBe(0);
    });

    test('when mutate returns undefined nothing is written and the current object is returned', async () => {
      const hint = hintKey('n2', 1, 'b', 'k');
      expect(await store.update(1, 'b', 'k', () => undefined, { extraOperations: [{ type: 'put', key: hint, value: STAMP }] })).toBeUndefined();
      expect(await engine.count(partitionDataRange(1))).toBe(0);
      expect(await engine.get(hint)).toBeUndefined();
      await store.update(1, 'b', 'k', () => objectWith('v'));
      expect(valueOf(await store.update(1, 'b', 'k', () => undefined))).toBe('v');
    });

    test('a throwing mutate writes nothing and releases the lock', async () => {
      await expect(store.update(1, 'b', 'k', () => { throw new Error('refused'); })).rejects.toThrow('refused');
      expect(await store.read(1, 'b', 'k')).toBeUndefined();
      expect(store.lockedKeyCount()).toBe(0);
    });

    test('corrupt stored bytes surface as CorruptObjectError from read and update, never as data', async () => {
      const encoded = encodeObject(objectWith('v'));
      encoded[encoded.length - 6] = encoded[encoded.length - 6]! ^ 0x01;
      await engine.put(dataKey(1, 'b', 'flipped'), encoded);
      await engine.put(dataKey(1, 'b', 'garbage'), text('not an object'));
      await expect(store.read(1, 'b', 'flipped')).rejects.toThrow(CorruptObjectError);
      await expect(store.read(1, 'b', 'garbage')).rejects.toThrow(CorruptObjectError);
      const mutate = jest.fn(increment);
      await expect(store.update(1, 'b', 'garbage', mutate)).rejects.toThrow(CorruptObjectError);
      expect(mutate).not.toHaveBeenCalled();
      expect(str((await engine.get(dataKey(1, 'b', 'garbage')))!)).toBe('not an object');
    });

    test('with replaceCorrupt an update sees undefined for corrupt bytes and replaces them', async () => {
      await engine.put(dataKey(1, 'b', 'garbage'), text('not an object'));
      const seen: (VersionedObject | undefined)[] = [];
      await store.update(1, 'b', 'garbage', (current) => { seen.push(current); return objectWith('fresh'); }, { replaceCorrupt: true });
      expect(seen).toEqual([undefined]);
      expect(valueOf(await store.read(1, 'b', 'garbage'))).toBe('fresh');
    });

    test('scanPartition yields only that partition in key order, and resumes after a raw key', async () => {
      const names = ['b/z', 'a/k2', 'a/k1', 'bucket/ü', 'a/k10'];
      for (const p of [1, 2, 3]) {
        for (const n of names) {
          const [bucket, key] = n.split('/') as [string, string];
          await store.update(p, bucket, key, () => objectWith(`${p}:${n}`));
        }
      }
      const all: StoredObject[] = [];
      for await (const entry of store.scanPartition(2)) all.push(entry);
      expect(all.map((e) => `${e.partition}:${e.bucket}/${e.key}`)).toEqual(['2:a/k1', '2:a/k10', '2:a/k2', '2:b/z', '2:bucket/ü']);
      expect(all.map((e) => valueOf(e.object))).toEqual(all.map((e) => `2:${e.bucket}/${e.key}`));

      const paged: string[] = [];
      let after: Uint8Array | undefined;
      for (let page = 0; page < 10; page++) {
        const batch: StoredObject[] = [];
        for await (const entry of store.scanPartition(2, { limit: 2, after })) batch.push(entry);
        if (batch.length === 0) break;
        paged.push(...batch.map((e) => `${e.bucket}/${e.key}`));
        after = batch[batch.length - 1]!.rawKey;
      }
      expect(paged).toEqual(all.map((e) => `${e.bucket}/${e.key}`));
    });

    test('a partition scan skips corrupt objects, reports each, and still fills a limited page', async () => {
      const events: CorruptObjectEvent[] = [];
      store.onCorruptObject = (event) => events.push(event);
      for (const key of ['a', 'c', 'e']) await store.update(4, 'b', key, () => objectWith(key));
      await engine.put(dataKey(4, 'b', 'b'), text('garbage'));
      await engine.put(dataKey(4, 'b', 'd'), encodeObject(objectWith('d')).subarray(0, 9));
      const scan = async (limit?: number): Promise<string[]> => {
        const keys: string[] = [];
        for await (const entry of store.scanPartition(4, limit === undefined ? {} : { limit })) keys.push(entry.key);
        return keys;
      };
      expect(await scan()).toEqual(['a', 'c', 'e']);
      expect(events.map((e) => [e.partition, e.bucket, e.key, e.replaced])).toEqual([[4, 'b', 'b', false], [4, 'b', 'd', false]]);
      // Two objects wanted: the page of two entries held a corrupt one, so the scan reads on.
      expect(await scan(2)).toEqual(['a', 'c']);
      expect(await scan(3)).toEqual(['a', 'c', 'e']);
    });

    test('read and update report a corrupt object; an update that replaces it says so', async () => {
      const events: CorruptObjectEvent[] = [];
      store.onCorruptObject = (event) => events.push(event);
      await engine.put(dataKey(1, 'b', 'bad'), text('garbage'));
      await expect(store.read(1, 'b', 'bad')).rejects.toThrow(CorruptObjectError);
      await expect(store.update(1, 'b', 'bad', increment)).rejects.toThrow(CorruptObjectError);
      await store.update(1, 'b', 'bad', () => objectWith('fresh'), { replaceCorrupt: true });
      expect(events.map((e) => [e.key, e.replaced, e.reason])).toEqual([
        ['bad', false, expect.stringMatching(/format byte/)],
        ['bad', false, expect.stringMatching(/format byte/)],
        ['bad', true, expect.stringMatching(/format byte/)],
      ]);
      expect(valueOf(await store.read(1, 'b', 'bad'))).toBe('fresh');
    });

    test('removeHint removes a hint only while it holds the given stamp', async () => {
      const hint = hintKey('n2', 1, 'b', 'k');
      await store.update(1, 'b', 'k', () => objectWith('v'), { extraOperations: [{ type: 'put', key: hint, value: STAMP }] });
      expect(await store.removeHint('n2', 1, 'b', 'k', Uint8Array.of(9), true)).toBe(false);
      expect(await engine.get(hint)).toBeDefined();
      expect(await store.removeHint('n2', 1, 'b', 'k', STAMP, false)).toBe(false);
      expect(await engine.get(hint)).toBeUndefined();
      expect(valueOf(await store.read(1, 'b', 'k'))).toBe('v');
      expect(await store.removeHint('n2', 1, 'b', 'k', STAMP, true)).toBe(false);
    });

    test('removeHint drops the local copy only when no other target still has a hint for the key', async () => {
      const put = (target: string, key: string) => ({ type: 'put' as const, key: hintKey(target, 1, 'b', key), value: STAMP });
      await store.update(1, 'b', 'k', () => objectWith('v'), { extraOperations: [put('n2', 'k'), put('n3', 'k')] });
      await store.update(1, 'b', 'other', () => objectWith('w'), { extraOperations: [put('n1', 'other'), put('n4', 'other')] });
      expect(await store.removeHint('n2', 1, 'b', 'k', STAMP, true)).toBe(false);
      expect(valueOf(await store.read(1, 'b', 'k'))).toBe('v');
      expect(await store.removeHint('n3', 1, 'b', 'k', STAMP, true)).toBe(true);
      expect(await store.read(1, 'b', 'k')).toBeUndefined();
      expect(await engine.get(hintKey('n3', 1, 'b', 'k'))).toBeUndefined();
      expect(valueOf(await store.read(1, 'b', 'other'))).toBe('w');
      expect(store.lockedKeyCount()).toBe(0);
    });

    test('removeIf deletes only the object its predicate approves, tells the observer, and leaves absent keys alone', async () => {
      const changes: string[] = [];
      store.onObjectChanged = (_p, _b, key, before, after) => changes.push(`${key}:${valueOf(before) ?? '-'}->${valueOf(after) ?? '-'}`);
      await store.update(1, 'b', 'k', () => objectWith('v'));
      expect(await store.removeIf(1, 'b', 'k', (current) => valueOf(current) === 'other')).toBe(false);
      expect(valueOf(await store.read(1, 'b', 'k'))).toBe('v');
      expect(await store.removeIf(1, 'b', 'k', (current) => valueOf(current) === 'v')).toBe(true);
      expect(await store.read(1, 'b', 'k')).toBeUndefined();
      expect(await store.removeIf(1, 'b', 'absent', () => true)).toBe(false);
      expect(changes).toEqual(['k:-->v', 'k:v->-']);
      expect(store.lockedKeyCount()).toBe(0);
    });

    test('insertMissing stores keys without a copy as received, in one batch, and hands back keys that have one', async () => {
      const changes: string[] = [];
      store.onObjectChanged = (_p, _b, key, before, after) => changes.push(`${key}:${valueOf(before) ?? '-'}->${valueOf(after) ?? '-'}`);
      await store.update(1, 'b', 'have', () => objectWith('mine'));
      changes.length = 0;
      const received = ['new1', 'have', 'new2'].map((key, i) => ({ bucket: 'b', key, encoded: encodeObject(objectWith(`theirs${i}`, 1, 'n2')) }));
      const batch = jest.spyOn(engine, 'batch');
      const left = await store.insertMissing(1, received);
      expect(left).toEqual([received[1]]);
      expect(batch).toHaveBeenCalledTimes(1);
      expect(batch.mock.calls[0]![0].map((op) => (op.type === 'put' ? str(op.key.subarray(-4)) : op.type))).toEqual(['new1', 'new2']);
      expect([...(await engine.get(dataKey(1, 'b', 'new1')))!]).toEqual([...received[0]!.encoded]);
      expect(valueOf(await store.read(1, 'b', 'have'))).toBe('mine');
      expect(changes).toEqual(['new1:-->theirs0', 'new2:-->theirs2']);
      expect(await store.insertMissing(1, [])).toEqual([]);
      expect(store.lockedKeyCount()).toBe(0);
    });

    test('insertMissing refuses corrupt received bytes before it writes anything', async () => {
      const bad = encodeObject(objectWith('x'));
      bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
      const received = [{ bucket: 'b', key: 'good', encoded: encodeObject(objectWith('g')) }, { bucket: 'b', key: 'bad', encoded: bad }];
      await expect(store.insertMissing(1, received)).rejects.toThrow(CorruptObjectError);
      expect(await engine.count(partitionDataRange(1))).toBe(0);
      expect(store.lockedKeyCount()).toBe(0);
    });

    test('insertMissing never waits for a lock: a key an update holds is handed back, and an update that comes later waits for the insert', async () => {
      // An update holds "busy" from the moment it is called until its write is done.
      const holding = store.update(1, 'b', 'busy', () => objectWith('client'));
      const received = ['busy', 'free'].map((key) => ({ bucket: 'b', key, encoded: encodeObject(objectWith(`received-${key}`, 1, 'n2')) }));
      const inserting = store.insertMissing(1, received);
      // Called while the insert holds "free": this update must see the received object.
      const seen: (VersionedObject | undefined)[] = [];
      const later = store.update(1, 'b', 'free', (current) => {
        seen.push(current);
        return current;
      });
      expect(await inserting).toEqual([received[0]]);
      await Promise.all([holding, later]);
      expect(valueOf(await store.read(1, 'b', 'busy'))).toBe('client');
      expect(seen.map(valueOf)).toEqual(['received-free']);
      expect(store.lockedKeyCount()).toBe(0);
    });

    test('close waits for an admitted update, closes the engine and refuses later updates', async () => {
      const pending = store.update(1, 'b', 'k', increment);
      const closing = store.close();
      await expect(store.update(1, 'b', 'k', increment)).rejects.toThrow(StorageClosedError);
      expect(valueOf(await pending)).toBe('1');
      await closing;
      await expect(engine.get(dataKey(1, 'b', 'k'))).rejects.toThrow(StorageClosedError);
    });
  });
}

describeObjectStore('MemoryEngine', memoryEngineFactory());
describeObjectStore('RocksDbEngine', rocksDbEngineFactory());
