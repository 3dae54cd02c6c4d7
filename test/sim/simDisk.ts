/**
 * A node's disk with crash semantics, over the in-memory engine.
 *
 * Writes without `sync` are visible to reads at once but sit in an unsynced list; a write with
 * `sync` first makes everything before it durable, as an fsync of RocksDB's write-ahead log
 * does. A crash keeps a random prefix of the unsynced list (the part the OS happened to write
 * back) and loses the rest; the next incarnation opens a fresh handle over what survived.
 *
 * Each process incarnation gets its own handle. A crash closes the old handle for good, so code
 * of a dead incarnation that is still on the promise queue fails with StorageClosedError instead
 * of writing into the next life's data.
 */
import { MemoryEngine } from '../../node/src/storage/memory';
import { StorageClosedError, type BatchOperation, type RangeOptions, type StorageEngine, type StorageStats, type WriteOptions } from '../../node/src/storage/engine';
import { decodeDataKey, decodeHintKey, KEY_KIND } from '../../node/src/storage/keys';
import { decodeObject } from '../../node/src/storage/objectCodec';
import type { Prng } from './prng';
import { describe } from './workload';

/** Unsynced writes beyond this many are written back oldest first, as a page cache would. */
const UNSYNCED_WRITES_MAX = 10_000;

/** Every key the store writes starts with a kind byte below 0xff (storage/keys.ts). */
const WHOLE_KEY_SPACE: RangeOptions = { gte: Uint8Array.of(0x00), lt: Uint8Array.of(0xff) };

type Write = { readonly kind: 'batch'; readonly operations: readonly BatchOperation[] } | { readonly kind: 'deleteRange'; readonly range: RangeOptions };

export class SimDisk {
  /** What survives a crash. */
  private durable = new MemoryEngine();
  /** What the running process sees: durable plus the unsynced writes. */
  private live = new MemoryEngine();
  private unsynced: Write[] = [];
  private handleSeq = 0;
  private currentHandle = -1;
  unsyncedLost = 0;
  /** Explained runs log every data write and every crash here. */
  log: ((line: string) => void) | undefined;

  async format(): Promise<void> {
    await this.durable.open();
    await this.live.open();
  }

  /** A handle for a new process incarnation; any older handle is dead from now on. */
  open(): StorageEngine {
    const id = ++this.handleSeq;
    this.currentHandle = id;
    return new DiskHandle(this, () => this.currentHandle === id);
  }

  /** The process dies: a random prefix of the unsynced writes reaches the disk, the rest is lost. */
  async crash(prng: Prng): Promise<void> {
    this.currentHandle = -1;
    const kept = prng.int(0, this.unsynced.length);
    this.log?.(`crash keeps ${kept} of ${this.unsynced.length} unsynced writes`);
    for (const write of this.unsynced.slice(0, kept)) await apply(this.durable, write);
    this.unsyncedLost += this.unsynced.length - kept;
    this.unsynced = [];
    this.live = new MemoryEngine();
    await this.live.open();
    for await (const [key, value] of this.durable.scan(WHOLE_KEY_SPACE)) await this.live.put(key, value);
  }

  /** The node's data directory is removed (a node that left, started again as a new life of its id). */
  async wipe(): Promise<void> {
    this.currentHandle = -1;
    this.durable = new MemoryEngine();
    this.live = new MemoryEngine();
    this.unsynced = [];
    await this.format();
  }

  /** The engine reads go to (for the checker, which looks at a node's data from outside). */
  view(): MemoryEngine {
    return this.live;
  }

  async write(write: Write, sync: boolean): Promise<void> {
    if (this.log !== undefined && write.kind === 'batch') logWrite(this.log, write.operations, sync);
    await apply(this.live, write);
    this.unsynced.push(write);
    if (sync) await this.flush(this.unsynced.length);
    else if (this.unsynced.length > UNSYNCED_WRITES_MAX) await this.flush(this.unsynced.length - UNSYNCED_WRITES_MAX);
  }

  private async flush(count: number): Promise<void> {
    const flushed = this.unsynced.splice(0, count);
    for (const write of flushed) await apply(this.durable, write);
  }
}

function logWrite(log: (line: string) => void, operations: readonly BatchOperation[], sync: boolean): void {
  for (const operation of operations) {
    if (operation.key[0] === KEY_KIND.data) {
      const { key } = decodeDataKey(operation.key);
      log(`${operation.type} ${key}${sync ? ' sync' : ''} ${operation.type === 'put' ? describe(decodeObject(operation.value)) : ''}`);
    } else if (operation.key[0] === KEY_KIND.hint) {
      const { key, target } = decodeHintKey(operation.key);
      log(`${operation.type} hint for ${target} ${key}${sync ? ' sync' : ''}`);
    }
  }
}

async function apply(engine: MemoryEngine, write: Write): Promise<void> {
  if (write.kind === 'batch') await engine.batch(write.operations);
  else await engine.deleteRange(write.range);
}

/** One incarnation's view of the disk; every call fails once that incarnation is dead. */
class DiskHandle implements StorageEngine {
  constructor(
    private readonly disk: SimDisk,
    private readonly alive: () => boolean,
  ) {}

  async open(): Promise<void> {
    this.check();
  }

  async close(): Promise<void> {
    // The disk outlives the process; closing a handle changes nothing.
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.check();
    return this.disk.view().get(key);
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.check();
    return this.disk.view().getMany(keys);
  }

  async put(key: Uint8Array, value: Uint8Array, options?: WriteOptions): Promise<void> {
    await this.batch([{ type: 'put', key, value }], options);
  }

  async del(key: Uint8Array, options?: WriteOptions): Promise<void> {
    await this.batch([{ type: 'del', key }], options);
  }

  async batch(operations: readonly BatchOperation[], options?: WriteOptions): Promise<void> {
    this.check();
    // Copied, so a caller reusing its arrays cannot change what a later flush writes.
    const copy = operations.map((o): BatchOperation => (o.type === 'put' ? { type: 'put', key: o.key.slice(), value: o.value.slice() } : { type: 'del', key: o.key.slice() }));
    await this.disk.write({ kind: 'batch', operations: copy }, options?.sync === true);
  }

  scan(range: RangeOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    this.check();
    const inner = this.disk.view().scan(range);
    const check = () => this.check();
    return {
      async *[Symbol.asyncIterator]() {
        for await (const entry of inner) {
          check();
          yield entry;
        }
      },
    };
  }

  async count(range: RangeOptions): Promise<number> {
    this.check();
    return this.disk.view().count(range);
  }

  async deleteRange(range: RangeOptions, options?: WriteOptions): Promise<void> {
    this.check();
    await this.disk.write({ kind: 'deleteRange', range: { gte: range.gte.slice(), lt: range.lt.slice(), limit: range.limit } }, options?.sync === true);
  }

  async stats(): Promise<StorageStats> {
    this.check();
    return this.disk.view().stats();
  }

  private check(): void {
    if (!this.alive()) throw new StorageClosedError('sim disk (process crashed)');
  }
}
