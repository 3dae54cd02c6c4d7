/**
 * One conformance suite for every StorageEngine (the abstract-level habit): the in-memory
 * engine the simulator uses must behave exactly like RocksDB, so a bug found in simulation is a
 * bug of the real node and the other way round. Each test starts from a fresh, open engine
 * (RocksDB in its own temporary directory, removed afterwards).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArgumentError, StorageClosedError, type BatchOperation, type StorageEngine } from './engine';
import { MemoryEngine } from './memory';
import { RocksDbEngine } from './rocksdb';

export interface EngineFixture {
  /** An open engine with no data. */
  readonly engine: StorageEngine;
  /** Closes the engine and opens one on the same data, as a process restart would. */
  reopen(): Promise<StorageEngine>;
  /** Closes the engine and removes its files. */
  dispose(): Promise<void>;
}

export interface EngineFactory {
  /** Whether data survives reopen(); the persistence tests run only then. */
  readonly persistent: boolean;
  create(): Promise<EngineFixture>;
}

/** MemoryEngine keeps its data across close() and open() of the same instance. */
export function memoryEngineFactory(): EngineFactory {
  return {
    persistent: true,
    async create() {
      const engine = new MemoryEngine();
      await engine.open();
      return {
        engine,
        async reopen() {
          await engine.close();
          await engine.open();
          return engine;
        },
        dispose: () => engine.close(),
      };
    },
  };
}

export function rocksDbEngineFactory(engineOptions: { synchronousReads?: boolean } = {}): EngineFactory {
  return {
    persistent: true,
    async create() {
      const path = await mkdtemp(join(tmpdir(), 'dynamokv-rocksdb-'));
      let engine = new RocksDbEngine({ path, ...engineOptions });
      await engine.open();
      return {
        engine,
        async reopen() {
          await engine.close();
          engine = new RocksDbEngine({ path, ...engineOptions });
          await engine.open();
          return engine;
        },
        async dispose() {
          await engine.close();
          await rm(path, { recursive: true, force: true });
        },
      };
    },
  };
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

async function collect(entries: AsyncIterable<[Uint8Array, Uint8Array]>): Promise<[number[], number[]][]> {
  const result: [number[], number[]][] = [];
  for await (const [key, value] of entries) result.push([[...key], [...value]]);
  return result;
}

async function keysOf(entries: AsyncIterable<[Uint8Array, Uint8Array]>): Promise<number[][]> {
  return (await collect(entries)).map(([key]) => key);
}

export function describeStorageEngine(name: string, factory: EngineFactory): void {
  describe(`StorageEngine conformance: ${name}`, () => {
    let fixture: EngineFixture;
    let engine: StorageEngine;

    beforeEach(async () => {
      fixture = await factory.create();
      engine = fixture.engine;
    });

    afterEach(async () => {
      await fixture.dispose();
    });

    test('get answers undefined for a missing key and the stored bytes after put, overwrite and del', async () => {
      expect(await engine.get(text('k'))).toBeUndefined();
      await engine.put(text('k'), text('one'));
      expect([...(await engine.get(text('k')))!]).toEqual([...text('one')]);
      await engine.put(text('k'), text('two'));
      expect([...(await engine.get(text('k')))!]).toEqual([...text('two')]);
      await engine.del(text('k'));
      expect(await engine.get(text('k'))).toBeUndefined();
      await engine.del(text('never-stored'));
    });

    test('an empty value is stored and differs from a missing key', async () => {
      await engine.put(text('empty'), new Uint8Array(0));
      const value = await engine.get(text('empty'));
      expect(value).toBeDefined();
      expect(value!.length).toBe(0);
    });

    test('stored bytes are isolated from the caller buffers on both sides', async () => {
      const value = text('abc');
      await engine.put(text('k'), value);
      value[0] = 0x7a;
      const read = (await engine.get(text('k')))!;
      expect([...read]).toEqual([...text('abc')]);
      read[1] = 0x7a;
      expect([...(await engine.get(text('k')))!]).toEqual([...text('abc')]);
    });

    test('keys are Uint8Array views: only the viewed bytes count, not the whole buffer', async () => {
      const backing = Uint8Array.from([9, 1, 2, 3, 9]);
      await engine.put(backing.subarray(1, 4), backing.subarray(2, 3));
      expect([...(await engine.get(bytes(1, 2, 3)))!]).toEqual([2]);
      expect(await engine.get(backing)).toBeUndefined();
    });

    test('getMany answers in request order, with undefined for missing keys and repeats allowed', async () => {
      await engine.batch([
        { type: 'put', key: text('a'), value: text('A') },
        { type: 'put', key: text('c'), value: text('C') },
      ]);
      const values = await engine.getMany([text('c'), text('b'), text('a'), text('c')]);
      expect(values.map((v) => (v === undefined ? undefined : Buffer.from(v).toString()))).toEqual(['C', undefined, 'A', 'C']);
      expect(await engine.getMany([])).toEqual([]);
    });

    test('a batch applies puts and dels in order, so a later operation on the same key wins', async () => {
      await engine.put(text('gone'), text('x'));
      await engine.batch([
        { type: 'put', key: text('a'), value: text('1') },
        { type: 'del', key: text('a') },
        { type: 'del', key: text('b') },
        { type: 'put', key: text('b'), value: text('2') },
        { type: 'del', key: text('gone') },
      ]);
      const values = await engine.getMany([text('a'), text('b'), text('gone')]);
      expect(values.map((v) => v && Buffer.from(v).toString())).toEqual([undefined, '2', undefined]);
    });

    test('a batch with an invalid operation is refused whole: nothing of it is written', async () => {
      const invalid: unknown[] = [
        { type: 'put', key: new Uint8Array(0), value: text('v') },
        { type: 'put', key: 'string-key', value: text('v') },
        { type: 'put', key: text('k2'), value: null },
        { type: 'merge', key: text('k2'), value: text('v') },
        null,
      ];
      for (const bad of invalid) {
        const operations = [{ type: 'put', key: text('first'), value: text('v') }, bad, { type: 'put', key: text('last'), value: text('v') }] as BatchOperation[];
        await expect(engine.batch(operations)).rejects.toThrow(StorageArgumentError);
        expect(await engine.getMany([text('first'), text('last')])).toEqual([undefined, undefined]);
      }
    });

    test('a batch becomes visible all at once to reads issued while it is written', async () => {
      const operations: BatchOperation[] = [];
      for (let i = 0; i < 500; i++) operations.push({ type: 'put', key: text(`key-${String(i).padStart(4, '0')}`), value: text(`v${i}`) });
      const writing = engine.batch(operations, { sync: true });
      const [first, last] = await engine.getMany([operations[0]!.key, operations[499]!.key]);
      const counted = await engine.count({ gte: text('key-'), lt: text('key.') });
      await writing;
      expect(first === undefined).toBe(last === undefined);
      expect([0, 500]).toContain(counted);
      expect(await engine.count({ gte: text('key-'), lt: text('key.') })).toBe(500);
    });

    test('scan returns keys in unsigned bytewise order, including 0x00 and 0xff bytes', async () => {
      const sorted = [[0x00], [0x00, 0x00], [0x00, 0xff], [0x01], [0x7f], [0x7f, 0xff], [0x80], [0x80, 0x00], [0xfe, 0xff, 0xff], [0xff], [0xff, 0x00], [0xff, 0xff]];
      const shuffled = [7, 2, 11, 0, 9, 4, 1, 10, 3, 8, 6, 5].map((i) => sorted[i]!);
      for (const key of shuffled) await engine.put(Uint8Array.from(key), Uint8Array.from([key.length]));
      const all = await collect(engine.scan({ gte: bytes(0x00), lt: bytes(0xff, 0xff, 0xff) }));
      expect(all).toEqual(sorted.map((key) => [key, [key.length]]));
    });

    test('scan includes gte, excludes lt and stops at the limit', async () => {
      for (const key of ['a', 'b', 'c', 'd', 'e']) await engine.put(text(key), text(key.toUpperCase()));
      const range = { gte: text('b'), lt: text('e') };
      expect(await keysOf(engine.scan(range))).toEqual([[...text('b')], [...text('c')], [...text('d')]]);
      expect(await keysOf(engine.scan({ ...range, limit: 2 }))).toEqual([[...text('b')], [...text('c')]]);
      expect(await keysOf(engine.scan({ ...range, limit: 0 }))).toEqual([]);
      expect(await keysOf(engine.scan({ gte: text('e'), lt: text('b') }))).toEqual([]);
      expect(await keysOf(engine.scan({ gte: text('c'), lt: text('c') }))).toEqual([]);
    });

    test('scan over more entries than one engine fetch keeps order and misses nothing', async () => {
      const operations: BatchOperation[] = [];
      for (let i = 0; i < 2500; i++) operations.push({ type: 'put', key: Uint8Array.of(0x10, i >> 8, i & 0xff), value: Uint8Array.of(i & 0xff) });
      await engine.batch(operations);
      const seen = await keysOf(engine.scan({ gte: bytes(0x10), lt: bytes(0x11) }));
      expect(seen).toHaveLength(2500);
      seen.forEach((key, i) => expect(key).toEqual([0x10, i >> 8, i & 0xff]));
      expect(await keysOf(engine.scan({ gte: bytes(0x10), lt: bytes(0x11), limit: 1500 }))).toHaveLength(1500);
    });

    test('a scan sees the entries present when it started, not writes made during it', async () => {
      for (const key of ['a', 'b', 'c']) await engine.put(text(key), text('old'));
      const seen: string[] = [];
      for await (const [key, value] of engine.scan({ gte: text('a'), lt: text('z') })) {
        seen.push(`${Buffer.from(key).toString()}=${Buffer.from(value).toString()}`);
        if (seen.length === 1) await engine.batch([{ type: 'put', key: text('b'), value: text('new') }, { type: 'put', key: text('bb'), value: text('new') }]);
      }
      expect(seen).toEqual(['a=old', 'b=old', 'c=old']);
    });

    test('count counts exactly the keys of the range, up to the limit', async () => {
      for (let i = 0; i < 30; i++) await engine.put(Uint8Array.of(0x20, i), Uint8Array.of(i));
      expect(await engine.count({ gte: bytes(0x20), lt: bytes(0x21) })).toBe(30);
      expect(await engine.count({ gte: bytes(0x20, 10), lt: bytes(0x20, 20) })).toBe(10);
      expect(await engine.count({ gte: bytes(0x20), lt: bytes(0x21), limit: 7 })).toBe(7);
      expect(await engine.count({ gte: bytes(0x21), lt: bytes(0x30) })).toBe(0);
    });

    test('deleteRange removes the keys in [gte, lt) and nothing outside it', async () => {
      const keys = [[0x30], [0x30, 0xff], [0x31], [0x31, 0x00], [0x31, 0xff, 0xff], [0x32], [0x32, 0x00]];
      for (const key of keys) await engine.put(Uint8Array.from(key), text('v'));
      await engine.deleteRange({ gte: bytes(0x31), lt: bytes(0x32) });
      expect(await keysOf(engine.scan({ gte: bytes(0x00), lt: bytes(0xff) }))).toEqual([[0x30], [0x30, 0xff], [0x32], [0x32, 0x00]]);
      await engine.deleteRange({ gte: bytes(0x30, 0x00), lt: bytes(0x32, 0x00) }, { sync: true });
      expect(await keysOf(engine.scan({ gte: bytes(0x00), lt: bytes(0xff) }))).toEqual([[0x30], [0x32, 0x00]]);
      await engine.deleteRange({ gte: bytes(0x40), lt: bytes(0x30) });
      expect(await engine.count({ gte: bytes(0x00), lt: bytes(0xff) })).toBe(2);
    });

    test('deleteRange with a limit removes only the first keys of the range', async () => {
      for (let i = 0; i < 10; i++) await engine.put(Uint8Array.of(0x50, i), text('v'));
      await engine.deleteRange({ gte: bytes(0x50), lt: bytes(0x51), limit: 4 });
      expect(await keysOf(engine.scan({ gte: bytes(0x50), lt: bytes(0x51) }))).toEqual([4, 5, 6, 7, 8, 9].map((i) => [0x50, i]));
    });

    test('stats names the engine and its size estimate grows with the data', async () => {
      const before = await engine.stats();
      expect(typeof before.engine).toBe('string');
      expect(before.engine.length).toBeGreaterThan(0);
      expect(before.approximateBytes).toBeGreaterThanOrEqual(0);
      const operations: BatchOperation[] = [];
      for (let i = 0; i < 64; i++) operations.push({ type: 'put', key: Uint8Array.of(0x60, i), value: new Uint8Array(4096).fill(i) });
      await engine.batch(operations);
      const after = await engine.stats();
      expect(after.approximateBytes).toBeGreaterThan(before.approximateBytes);
      expect(after.approximateBytes).toBeGreaterThanOrEqual(64 * 4096 / 2);
    });

    test('invalid keys and ranges are refused with StorageArgumentError', async () => {
      await expect(engine.get(new Uint8Array(0))).rejects.toThrow(StorageArgumentError);
      await expect(engine.put(text('k'), 'v' as unknown as Uint8Array)).rejects.toThrow(StorageArgumentError);
      await expect(engine.count({ gte: text('a'), lt: text('b'), limit: -1 })).rejects.toThrow(StorageArgumentError);
      expect(() => engine.scan({ gte: text('a'), lt: text('b'), limit: 1.5 })).toThrow(StorageArgumentError);
      expect(await engine.get(text('k'))).toBeUndefined();
    });

    test('close is idempotent, waits for a suspended scan without hanging, and later calls fail with StorageClosedError', async () => {
      for (let i = 0; i < 5; i++) await engine.put(Uint8Array.of(0x70, i), text('v'));
      const iterator = engine.scan({ gte: bytes(0x70), lt: bytes(0x71) })[Symbol.asyncIterator]();
      expect((await iterator.next()).done).toBe(false);
      await Promise.all([engine.close(), engine.close()]);
      await engine.close();
      await expect(iterator.next()).rejects.toThrow(StorageClosedError);
      await expect(engine.get(text('k'))).rejects.toThrow(StorageClosedError);
      await expect(engine.put(text('k'), text('v'))).rejects.toThrow(StorageClosedError);
      await expect(engine.batch([{ type: 'del', key: text('k') }])).rejects.toThrow(StorageClosedError);
      expect(() => engine.scan({ gte: text('a'), lt: text('b') })).toThrow(StorageClosedError);
    });

    test('close during an in-flight scan step and read waits for them: each settles with data or StorageClosedError', async () => {
      const operations: BatchOperation[] = [];
      for (let i = 0; i < 1500; i++) operations.push({ type: 'put', key: Uint8Array.of(0x71, i >> 8, i & 0xff), value: text('v') });
      await engine.batch(operations);
      const iterator = engine.scan({ gte: bytes(0x71), lt: bytes(0x72) })[Symbol.asyncIterator]();
      const step = iterator.next();
      const read = engine.get(Uint8Array.of(0x71, 0, 0));
      // Handlers go on before close(), which may reject them while it runs.
      const settled = Promise.allSettled([step, read]);
      await engine.close();
      const [stepResult, readResult] = await settled;
      for (const result of [stepResult, readResult]) {
        if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(StorageClosedError);
      }
      if (stepResult.status === 'fulfilled') {
        expect(stepResult.value.done).toBe(false);
        await expect(iterator.next()).rejects.toThrow(StorageClosedError);
      } else {
        // A generator that threw is finished: it reports done and never yields data again.
        expect(await iterator.next()).toEqual({ done: true, value: undefined });
      }
    });

    if (factory.persistent) {
      test('data, deletes and range deletes survive a reopen', async () => {
        await engine.put(text('kept'), text('1'), { sync: true });
        await engine.put(text('deleted'), text('2'));
        await engine.del(text('deleted'), { sync: true });
        await engine.batch([{ type: 'put', key: bytes(0x90, 1), value: text('r') }, { type: 'put', key: bytes(0x90, 2), value: text('r') }]);
        await engine.deleteRange({ gte: bytes(0x90), lt: bytes(0x91) }, { sync: true });
        await engine.batch([{ type: 'put', key: text('batched'), value: text('3') }], { sync: true });
        engine = await fixture.reopen();
        const values = await engine.getMany([text('kept'), text('deleted'), text('batched')]);
        expect(values.map((v) => v && Buffer.from(v).toString())).toEqual(['1', undefined, '3']);
        expect(await engine.count({ gte: bytes(0x90), lt: bytes(0x91) })).toBe(0);
      });
    }
  });
}
