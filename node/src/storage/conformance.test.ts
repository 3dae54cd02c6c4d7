/**
 * Runs the shared StorageEngine conformance suite against both engines, so the simulator's
 * in-memory engine and RocksDB are held to the same behaviour.
 */
import { describeStorageEngine, memoryEngineFactory, rocksDbEngineFactory } from './conformance';

describeStorageEngine('MemoryEngine', memoryEngineFactory());
describeStorageEngine('RocksDbEngine', rocksDbEngineFactory());
describeStorageEngine('RocksDbEngine (reads through the libuv pool)', rocksDbEngineFactory({ synchronousReads: false }));
