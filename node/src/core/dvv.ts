/**
 * Dotted version vectors in the "dotted causal container" form used by DVV sets.
 *
 * An object is (context, siblings). `context` says which writes the object has seen; each
 * sibling carries the dot of the write that produced it. Because dots are issued by replicas
 * (server-side), node n's dots for one key are 1, 2, 3, ... without gaps, so a version vector is
 * an exact summary of the seen set: dot (n, c) was seen iff c <= context[n].
 *
 * - update: a client write with the context it read discards exactly the siblings that context
 *   covers, and adds one sibling with a fresh dot from the coordinating replica.
 * - merge: a sibling survives if the other side also holds it or has not seen its dot. This is
 *   the join of a state-based CRDT: commutative, associative and idempotent.
 */
import type { ConflictMode, Dot, NewValue, NodeId, Sibling, VersionVector, VersionedObject } from './version';

export interface VersionOptions {
  readonly conflictMode: ConflictMode;
  /** Siblings beyond this many are dropped, oldest first, and counted by the caller. */
  readonly maxSiblings: number;
}

export interface UpdateResult {
  readonly object: VersionedObject;
  readonly dot: Dot;
  readonly droppedSiblings: number;
}

export const EMPTY_OBJECT: VersionedObject = Object.freeze({ context: Object.freeze({}), siblings: Object.freeze([]) });

export function covers(context: VersionVector, dot: Dot): boolean {
  return (context[dot.node] ?? 0) >= dot.counter;
}

export function compareDots(a: Dot, b: Dot): number {
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return a.counter - b.counter;
}

export function sameDot(a: Dot, b: Dot): boolean {
  return a.node === b.node && a.counter === b.counter;
}

/** Pointwise maximum, with keys in sorted order so equal vectors are built identically. */
export function mergeVectors(a: VersionVector, b: VersionVector): VersionVector {
  const nodes = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const result: Record<NodeId, number> = {};
  for (const node of nodes) result[node] = Math.max(a[node] ?? 0, b[node] ?? 0);
  return result;
}

/** True when `a` has seen every write `b` has seen. */
export function vectorDescends(a: VersionVector, b: VersionVector): boolean {
  for (const [node, counter] of Object.entries(b)) {
    if ((a[node] ?? 0) < counter) return false;
  }
  return true;
}

/**
 * Applies a client write coordinated by `coordinator`. The new dot's counter is one above
 * anything the replica or the client has seen from the coordinator, so it is never reused even
 * if a replica lost unsynced state and the client remembers a newer dot.
 */
export function update(
  current: VersionedObject,
  clientContext: VersionVector,
  coordinator: NodeId,
  value: NewValue,
  options: VersionOptions,
): UpdateResult {
  const counter = Math.max(current.context[coordinator] ?? 0, clientContext[coordinator] ?? 0) + 1;
  const dot: Dot = { node: coordinator, counter };
  const fresh: Sibling = { dot, ...value };
  const context = mergeVectors(mergeVectors(current.context, clientContext), { [coordinator]: counter });
  if (options.conflictMode === 'lww') {
    // Last write wins: the new write replaces everything, whatever context it carried.
    return { object: { context, siblings: [fresh] }, dot, droppedSiblings: 0 };
  }
  const survivors = current.siblings.filter((sibling) => !covers(clientContext, sibling.dot));
  const capped = capSiblings([...survivors, fresh], options.maxSiblings);
  return { object: { context, siblings: capped.siblings }, dot, droppedSiblings: capped.dropped };
}

/** Joins two replicas' states of the same key. */
export function merge(a: VersionedObject, b: VersionedObject, options: VersionOptions): VersionedObject {
  const keptFromA = a.siblings.filter((s) => !covers(b.context, s.dot) || b.siblings.some((t) => sameDot(s.dot, t.dot)));
  const keptFromB = b.siblings.filter((s) => !covers(a.context, s.dot) && !a.siblings.some((t) => sameDot(s.dot, t.dot)));
  const context = mergeVectors(a.context, b.context);
  const siblings = [...keptFromA, ...keptFromB];
  if (options.conflictMode === 'lww') {
    const winner = newestSibling(siblings);
    return { context, siblings: winner ? [winner] : [] };
  }
  return { context, siblings: capSiblings(siblings, options.maxSiblings).siblings };
}

/** Siblings that hold a value; tombstones are hidden when they sit beside a live value. */
export function liveSiblings(object: VersionedObject): Sibling[] {
  return object.siblings.filter((s) => !s.deleted);
}

/** The key was written and every current sibling is a delete. */
export function isTombstoned(object: VersionedObject): boolean {
  return object.siblings.length > 0 && object.siblings.every((s) => s.deleted);
}

/** Structural equality of two well-formed objects (siblings are kept sorted). */
export function equalObjects(a: VersionedObject, b: VersionedObject): boolean {
  if (!vectorDescends(a.context, b.context) || !vectorDescends(b.context, a.context)) return false;
  if (a.siblings.length !== b.siblings.length) return false;
  return a.siblings.every((s, i) => {
    const t = b.siblings[i];
    return t !== undefined && sameDot(s.dot, t.dot);
  });
}

/**
 * True when `a` already contains everything in `b`, so sending `b` to a's holder changes nothing
 * (merge(a, b) equals a). Comparing contexts is not enough: when the sibling cap drops a sibling
 * on one replica, its context still covers the dot, so two replicas can hold equal contexts and
 * different siblings. A sibling of `a` that `b` has seen but no longer holds is one b superseded
 * or dropped, and merging b into a removes it, so a does not contain b. (The simulator found
 * replicas that never converged because read repair judged such a replica up to date.)
 */
export function objectDescends(a: VersionedObject, b: VersionedObject): boolean {
  if (!vectorDescends(a.context, b.context)) return false;
  return a.siblings.every((s) => !covers(b.context, s.dot) || b.siblings.some((t) => sameDot(s.dot, t.dot)));
}

/** Throws when an object breaks the invariants in version.ts; decoders call it after reading. */
export function assertWellFormed(object: VersionedObject): void {
  for (const [node, counter] of Object.entries(object.context)) {
    if (!Number.isSafeInteger(counter) || counter < 1) throw new Error(`context counter for ${node} is not a positive integer`);
  }
  for (let i = 0; i < object.siblings.length; i++) {
    const sibling = object.siblings[i]!;
    if (!covers(object.context, sibling.dot)) throw new Error('sibling dot not covered by the context');
    const previous = object.siblings[i - 1];
    if (previous !== undefined && compareDots(previous.dot, sibling.dot) >= 0) throw new Error('siblings not sorted by dot');
  }
}

function newestSibling(siblings: readonly Sibling[]): Sibling | undefined {
  let best: Sibling | undefined;
  for (const s of siblings) {
    if (best === undefined || s.lastModifiedMs > best.lastModifiedMs || (s.lastModifiedMs === best.lastModifiedMs && compareDots(s.dot, best.dot) > 0)) {
      best = s;
    }
  }
  return best;
}

/**
 * Sorts siblings by dot and, past the cap, drops the oldest (by lastModified, then dot), so a
 * runaway writer without contexts cannot grow an object without bound. The drop is deterministic
 * on every replica, and callers count it in a metric.
 */
function capSiblings(siblings: readonly Sibling[], maxSiblings: number): { siblings: Sibling[]; dropped: number } {
  let kept = [...siblings];
  let dropped = 0;
  if (kept.length > maxSiblings) {
    const byAge = [...kept].sort((x, y) => x.lastModifiedMs - y.lastModifiedMs || compareDots(x.dot, y.dot));
    const evicted = byAge.slice(0, kept.length - maxSiblings);
    kept = kept.filter((s) => !evicted.includes(s));
    dropped = evicted.length;
  }
  kept.sort((x, y) => compareDots(x.dot, y.dot));
  return { siblings: kept, dropped };
}
