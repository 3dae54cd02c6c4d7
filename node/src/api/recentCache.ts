/**
 * A bounded map of recently used entries, for caches on the request path (context tokens).
 *
 * Two generations instead of a true LRU: entries go into `current`; when it holds `entriesMax / 2`
 * entries it becomes `previous` (and the old `previous` is dropped), and a hit in `previous`
 * moves the entry back into `current`. So the cache never holds more than `entriesMax` entries,
 * what was used within the last `entriesMax / 2` insertions is always kept, and a lookup is one or
 * two Map gets with no bookkeeping on a hit in `current`: cheaper than moving an entry to the
 * end of an LRU list on every hit, which is what made an LRU cost more than it saved here.
 */
export class RecentCache<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();
  private readonly generationEntriesMax: number;

  constructor(entriesMax: number) {
    if (!Number.isSafeInteger(entriesMax) || entriesMax < 2) throw new RangeError(`entriesMax must be an integer >= 2, got ${entriesMax}`);
    this.generationEntriesMax = Math.floor(entriesMax / 2);
  }

  get(key: K): V | undefined {
    const hit = this.current.get(key);
    if (hit !== undefined) return hit;
    const old = this.previous.get(key);
    if (old !== undefined) this.set(key, old);
    return old;
  }

  set(key: K, value: V): void {
    if (this.current.size >= this.generationEntriesMax) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }

  /** Entries held now, at most entriesMax (a key can sit in both generations once). */
  get size(): number {
    return this.current.size + this.previous.size;
  }
}
