/**
 * Version types shared by every layer. A stored object is a dotted causal container in the
 * style of DVV sets: a version vector that summarises every write the object has seen, plus
 * the siblings that are still current, each tagged with the dot (node, counter) that made it.
 *
 * Invariants (checked by `assertWellFormed` in dvv.ts):
 * - every sibling's dot is covered by `context` (dot.counter <= context[dot.node]);
 * - no two siblings share a dot; siblings are sorted by (node, counter);
 * - counters are positive safe integers.
 */

/** A node's stable identity in the ring (e.g. "n1" or a pod name). */
export type NodeId = string;

/** One event: the `counter`-th write coordinated by `node` for this key. */
export interface Dot {
  readonly node: NodeId;
  readonly counter: number;
}

/**
 * A version vector: for each node, the highest counter seen. Keys are node ids; encoders sort
 * them so the same vector always has the same bytes.
 */
export type VersionVector = Readonly<Record<NodeId, number>>;

/** One concurrent value of a key. A delete is a sibling with `deleted` set (a tombstone). */
export interface Sibling {
  readonly dot: Dot;
  readonly value: Uint8Array;
  readonly contentType: string;
  /** Wall-clock milliseconds when the coordinator stamped the write; informational and for lww. */
  readonly lastModifiedMs: number;
  readonly deleted: boolean;
}

/** The whole replicated state of one key. */
export interface VersionedObject {
  readonly context: VersionVector;
  readonly siblings: readonly Sibling[];
}

/** A value as written by a client, before a replica stamps it with a dot. */
export interface NewValue {
  readonly value: Uint8Array;
  readonly contentType: string;
  readonly lastModifiedMs: number;
  readonly deleted: boolean;
}

/** How a bucket resolves concurrent writes. */
export type ConflictMode = 'siblings' | 'lww';
