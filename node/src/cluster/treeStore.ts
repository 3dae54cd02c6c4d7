/**
 * The node's tictac trees (core/tictac.ts), one per partition, in memory. A tree is built the
 * first time it is needed by scanning the partition, and from then on kept current by the
 * ObjectStore's change observer, so no write ever waits for hashing beyond one XOR. Trees are
 * not persisted: a restarted node rebuilds each one on first use.
 *
 * Building while writes go on: the scan walks the partition in key order, in pages. A change to
 * a key the scan has already passed is applied as a delta (the tree holds what the scan read); a
 * change to a key ahead of the scan makes that key "pending": the scan skips it, and once the
 * scan ends each pending key is read under its key lock and added with its current version.
 *
 * Drift repair: if a tree ever disagrees with storage (a change whose commit raced the scan's
 * snapshot, a corrupt record replaced), an exchange finds a differing segment with no differing
 * key. Listing a segment's keys therefore also recomputes the segment from what was listed,
 * provided no change touched the partition during the listing.
 */
import { compareBytes } from '../storage/bytes';
import { dataKey } from '../storage/keys';
import { CorruptObjectError } from '../storage/objectCodec';
import type { ObjectChangeObserver, ObjectStore } from '../storage/objectStore';
import { applyChange, createTree, segmentOf, setSegment, versionDigest, type KeyDigest, type TictacTree, type TreeShape } from '../core/tictac';

export interface TreeStoreOptions {
  readonly shape: TreeShape;
  /** Objects read per storage scan page. */
  readonly scanPageSize: number;
  /** A bound on any one scan of a partition (build or listing). */
  readonly keysPerPartitionMax: number;
}

interface Building {
  /** The raw key the scan yielded last; undefined before the first. */
  cursor: Uint8Array | undefined;
  /** Set once the scan has passed every key. */
  passedAll: boolean;
  readonly pending: Map<string, { bucket: string; key: string }>;
}

interface Entry {
  readonly tree: TictacTree;
  /** Changes applied or seen since the tree was created; a listing heals segments only if it did not move. */
  changes: number;
  building: Building | undefined;
  readonly ready: Promise<TictacTree>;
}

export class TreeStore {
  private readonly entries = new Map<number, Entry>();

  constructor(
    private readonly store: ObjectStore,
    readonly options: TreeStoreOptions,
  ) {}

  /** Install as ObjectStore.onObjectChanged. Never throws: a failure here must not fail a write. */
  readonly observe: ObjectChangeObserver = (partition, bucket, key, before, after) => {
    const entry = this.entries.get(partition);
    if (entry === undefined) return;
    entry.changes++;
    const building = entry.building;
    if (building !== undefined) {
      const raw = dataKey(partition, bucket, key);
      const id = rawId(raw);
      if (building.pending.has(id)) return;
      if (!building.passedAll && (building.cursor === undefined || compareBytes(raw, building.cursor) > 0)) {
        building.pending.set(id, { bucket, key });
        return;
      }
    }
    applyChange(entry.tree, bucket, key, before === undefined ? undefined : versionDigest(before), after === undefined ? undefined : versionDigest(after));
  };

  /** The partition's tree, built on first use. */
  async tree(partition: number): Promise<TictacTree> {
    const existing = this.entries.get(partition);
    if (existing !== undefined) return existing.ready;
    const tree = createTree(this.options.shape);
    const building: Building = { cursor: undefined, passedAll: false, pending: new Map() };
    const entry = { tree, changes: 0, building } as Entry;
    Object.assign(entry, { ready: this.build(partition, entry, building) });
    this.entries.set(partition, entry);
    return entry.ready;
  }

  /** Forgets a partition's tree (e.g. after its range was deleted); the next use rebuilds it. */
  forget(partition: number): void {
    this.entries.delete(partition);
  }

  builtCount(): number {
    return [...this.entries.values()].filter((e) => e.building === undefined).length;
  }

  /**
   * The keys (with digests) stored in the given segments, at most `keysMax`. When the listing is
   * complete and nothing changed in the partition meanwhile, the listed segments are recomputed
   * from it, which heals any drift between the tree and storage.
   */
  async keysIn(partition: number, segments: readonly number[], keysMax: number): Promise<{ keys: KeyDigest[]; truncated: boolean }> {
    await this.tree(partition);
    const entry = this.entries.get(partition);
    const changesBefore = entry?.changes;
    const wanted = new Set(segments);
    const keys: KeyDigest[] = [];
    let truncated = false;
    await this.scan(partition, (bucket, key, digest) => {
      if (!wanted.has(segmentOf(this.options.shape, bucket, key))) return true;
      if (keys.length >= keysMax) {
        truncated = true;
        return false;
      }
      keys.push({ bucket, key, digest });
      return true;
    });
    if (!truncated && entry !== undefined && entry === this.entries.get(partition) && entry.building === undefined && entry.changes === changesBefore) {
      const bySegment = new Map<number, KeyDigest[]>([...wanted].map((s) => [s, []]));
      for (const k of keys) bySegment.get(segmentOf(this.options.shape, k.bucket, k.key))!.push(k);
      for (const [segment, entries] of bySegment) setSegment(entry.tree, segment, entries);
    }
    return { keys, truncated };
  }

  private async build(partition: number, entry: Entry, building: Building): Promise<TictacTree> {
    try {
      await this.scan(partition, (bucket, key, digest, raw) => {
        building.cursor = raw;
        if (!building.pending.has(rawId(raw))) applyChange(entry.tree, bucket, key, undefined, digest);
        return true;
      });
      building.passedAll = true;
      // Each pending key is read under its lock: a change either finished before (and was
      // ignored, the key being pending) or runs after, when the key is no longer pending.
      for (const [id, { bucket, key }] of [...building.pending]) {
        try {
          await this.store.update(partition, bucket, key, (current) => {
            if (current !== undefined) applyChange(entry.tree, bucket, key, undefined, versionDigest(current));
            building.pending.delete(id);
            return undefined;
          });
        } catch (error) {
          // A corrupt record has no digest; it stays out of the tree until a repair replaces it.
          if (!(error instanceof CorruptObjectError)) throw error;
          building.pending.delete(id);
        }
      }
      entry.building = undefined;
      return entry.tree;
    } catch (error) {
      if (this.entries.get(partition) === entry) this.entries.delete(partition);
      throw error;
    }
  }

  /** Visits the partition's objects in key order, page by page; `visit` returns false to stop. */
  private async scan(partition: number, visit: (bucket: string, key: string, digest: string, raw: Uint8Array) => boolean): Promise<void> {
    const pageSize = this.options.scanPageSize;
    let after: Uint8Array | undefined;
    for (let seen = 0; seen < this.options.keysPerPartitionMax; ) {
      let inPage = 0;
      for await (const o of this.store.scanPartition(partition, { limit: pageSize, ...(after === undefined ? {} : { after }) })) {
        inPage++;
        after = o.rawKey;
        if (!visit(o.bucket, o.key, versionDigest(o.object), o.rawKey)) return;
      }
      seen += inPage;
      if (inPage < pageSize) return;
    }
  }
}

function rawId(raw: Uint8Array): string {
  return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
}
