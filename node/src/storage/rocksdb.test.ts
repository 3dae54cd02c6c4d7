/**
 * RocksDB-specific checks the shared conformance suite cannot make: that a durable write really
 * reaches RocksDB with WriteOptions.sync set. The native batch_write call is spied on, because
 * RocksLevel's own put/del drop the caller's options and an fsync cannot be observed otherwise.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RocksDbEngine } from './rocksdb';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const binding = require('@nxtedition/rocksdb/binding') as { batch_write: (db: unknown, batch: unknown, options: { sync?: boolean }) => unknown };

describe('RocksDbEngine durable writes', () => {
  let path: string;
  let engine: RocksDbEngine;
  let syncFlags: (boolean | undefined)[];

  beforeEach(async () => {
    path = await mkdtemp(join(tmpdir(), 'dynamokv-rocksdb-sync-'));
    engine = new RocksDbEngine({ path });
    await engine.open();
    syncFlags = [];
    const original = binding.batch_write;
    jest.spyOn(binding, 'batch_write').mockImplementation((db, batch, options) => {
      syncFlags.push(options?.sync);
      return original(db, batch, options);
    });
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await engine.close();
    await rm(path, { recursive: true, force: true });
  });

  test('put, del and batch with sync: true hand sync = true to the native write', async () => {
    const key = Uint8Array.of(1);
    await engine.put(key, Uint8Array.of(2), { sync: true });
    await engine.del(key, { sync: true });
    await engine.batch([{ type: 'put', key, value: Uint8Array.of(3) }], { sync: true });
    expect(syncFlags).toEqual([true, true, true]);
  });

  test('writes without the option are not synced', async () => {
    const key = Uint8Array.of(1);
    await engine.put(key, Uint8Array.of(2));
    await engine.del(key, { sync: false });
    await engine.batch([{ type: 'put', key, value: Uint8Array.of(3) }]);
    expect(syncFlags).toEqual([false, false, false]);
  });

  test('a durable deleteRange is followed by a synced write that flushes the write-ahead log', async () => {
    await engine.deleteRange({ gte: Uint8Array.of(1), lt: Uint8Array.of(2) }, { sync: true });
    expect(syncFlags).toEqual([true]);
    await engine.deleteRange({ gte: Uint8Array.of(1), lt: Uint8Array.of(2) });
    expect(syncFlags).toEqual([true]);
  });

  test('reopening the same instance after close sees the data', async () => {
    await engine.put(Uint8Array.of(7), Uint8Array.of(8), { sync: true });
    await engine.close();
    await engine.open();
    expect([...(await engine.get(Uint8Array.of(7)))!]).toEqual([8]);
  });
});
