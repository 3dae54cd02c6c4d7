/**
 * Tictac hash trees for anti-entropy (the scheme of Riak's tictac AAE): per partition, a fixed
 * tree of `branchCount * leavesPerBranch` segments. A key belongs to one segment, chosen by a hash
 * of the key that is independent of the partition hash. A segment's hash is the XOR of
 * hash(key, version digest) over the keys in it; a branch is the XOR of its leaves and the root
 * the XOR of the branches.
 *
 * XOR is what makes the tree cheap to keep current: changing one key's version from d1 to d2 is
 * leaf ^= h(key, d1) ^ h(key, d2) (and the same on its branch), with no rebuild and no ordering
 * constraint, so incremental updates in any order equal a rebuild from scratch. Hashes are 64
 * bits (two murmur3 seeds), so two different segment contents collide with odds of about 2^-64.
 *
 * Trees are mutated in place: copying 16 KiB per write to keep them immutable would cost more
 * than the write. Everything here is still deterministic and free of I/O.
 */
import { murmur3 } from './partition';
import type { VersionedObject } from './version';

export interface TreeShape {
  readonly branchCount: number;
  readonly leavesPerBranch: number;
}

/** 1024 segments: for a partition of 100k keys about 100 keys per segment to compare on a miss. */
export const DEFAULT_TREE_SHAPE: TreeShape = Object.freeze({ branchCount: 32, leavesPerBranch: 32 });
/** Upper bound on either dimension, so a tree received or configured cannot be huge. */
export const TREE_DIMENSION_MAX = 1024;
/** Bytes of one hash on the wire. */
export const HASH_BYTES = 8;

export interface TictacTree {
  readonly shape: TreeShape;
  /** Two 32-bit words (high, low) per segment. */
  readonly leaves: Uint32Array;
  /** Two 32-bit words per branch: the XOR of its leaves. */
  readonly branches: Uint32Array;
}

/** A key of a partition with the digest of its stored version. */
export interface KeyDigest {
  readonly bucket: string;
  readonly key: string;
  readonly digest: string;
}

export interface KeyDifference {
  readonly bucket: string;
  readonly key: string;
  /** undefined when that side does not hold the key. */
  readonly local: string | undefined;
  readonly remote: string | undefined;
}

const SEED_HIGH = 0x9747b28c;
const SEED_LOW = 0x5bd1e995;
const SEED_SEGMENT = 0x2545f491;
const utf8 = new TextEncoder();

export function isValidShape(shape: TreeShape): boolean {
  const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= TREE_DIMENSION_MAX;
  return ok(shape.branchCount) && ok(shape.leavesPerBranch);
}

export function segmentCount(shape: TreeShape): number {
  return shape.branchCount * shape.leavesPerBranch;
}

export function createTree(shape: TreeShape): TictacTree {
  if (!isValidShape(shape)) throw new RangeError(`tree shape ${shape.branchCount}x${shape.leavesPerBranch} is outside 1..${TREE_DIMENSION_MAX}`);
  return { shape, leaves: new Uint32Array(2 * segmentCount(shape)), branches: new Uint32Array(2 * shape.branchCount) };
}

/**
 * A digest of everything that identifies a version: the context and the siblings' dots. Dots are
 * unique per write, so two replicas with equal digests hold equal objects (equalObjects), and
 * any change of state changes the digest. The encoding is JSON of sorted entries: injective
 * for any node id, and the same on every replica.
 */
export function versionDigest(object: VersionedObject): string {
  const context = Object.keys(object.context)
    .sort()
    .map((node) => [node, object.context[node]]);
  const dots = object.siblings.map((s) => [s.dot.node, s.dot.counter]);
  const bytes = utf8.encode(JSON.stringify([context, dots]));
  return hex32(murmur3(bytes, SEED_HIGH)) + hex32(murmur3(bytes, SEED_LOW));
}

/** The segment a key belongs to; a different seed from partitionOf so segments spread evenly inside a partition. */
export function segmentOf(shape: TreeShape, bucket: string, key: string): number {
  return murmur3(keyBytes(bucket, key), SEED_SEGMENT) % segmentCount(shape);
}

/** Applies one key's change: `before` and `after` are version digests, undefined for "absent". */
export function applyChange(tree: TictacTree, bucket: string, key: string, before: string | undefined, after: string | undefined): void {
  if (before === after) return;
  const segment = segmentOf(tree.shape, bucket, key);
  if (before !== undefined) xorEntry(tree, segment, bucket, key, before);
  if (after !== undefined) xorEntry(tree, segment, bucket, key, after);
}

/** A tree of exactly these entries; what incremental updates must always equal. */
export function buildTree(shape: TreeShape, entries: Iterable<KeyDigest>): TictacTree {
  const tree = createTree(shape);
  for (const e of entries) applyChange(tree, e.bucket, e.key, undefined, e.digest);
  return tree;
}

/** Overwrites one segment with the XOR of `entries` (all of which must belong to it). */
export function setSegment(tree: TictacTree, segment: number, entries: Iterable<KeyDigest>): void {
  let high = 0;
  let low = 0;
  for (const e of entries) {
    const [h, l] = entryHash(e.bucket, e.key, e.digest);
    high ^= h;
    low ^= l;
  }
  const branch = Math.floor(segment / tree.shape.leavesPerBranch);
  xorWord(tree.branches, 2 * branch, tree.leaves[2 * segment]! ^ high);
  xorWord(tree.branches, 2 * branch + 1, tree.leaves[2 * segment + 1]! ^ low);
  tree.leaves[2 * segment] = high;
  tree.leaves[2 * segment + 1] = low;
}

export function rootHash(tree: TictacTree): Uint8Array {
  let high = 0;
  let low = 0;
  for (let b = 0; b < tree.shape.branchCount; b++) {
    high ^= tree.branches[2 * b]!;
    low ^= tree.branches[2 * b + 1]!;
  }
  return wordsToBytes(Uint32Array.of(high, low));
}

/** Every branch hash, HASH_BYTES each, big-endian. */
export function branchHashes(tree: TictacTree): Uint8Array {
  return wordsToBytes(tree.branches);
}

/** The leaf hashes of the given branches, in the order given, leavesPerBranch * HASH_BYTES per branch. */
export function leafHashes(tree: TictacTree, branches: readonly number[]): Uint8Array {
  const per = tree.shape.leavesPerBranch;
  const words = new Uint32Array(2 * per * branches.length);
  branches.forEach((branch, i) => {
    if (!Number.isInteger(branch) || branch < 0 || branch >= tree.shape.branchCount) throw new RangeError(`branch ${branch} is outside the tree`);
    words.set(tree.leaves.subarray(2 * per * branch, 2 * per * (branch + 1)), 2 * per * i);
  });
  return wordsToBytes(words);
}

/** Indexes of the HASH_BYTES-sized hashes that differ between two equally long hash lists. */
export function differingHashes(a: Uint8Array, b: Uint8Array): number[] {
  if (a.length !== b.length || a.length % HASH_BYTES !== 0) throw new RangeError(`hash lists of ${a.length} and ${b.length} bytes cannot be compared`);
  const differing: number[] = [];
  for (let i = 0; i < a.length / HASH_BYTES; i++) {
    for (let j = i * HASH_BYTES; j < (i + 1) * HASH_BYTES; j++) {
      if (a[j] !== b[j]) {
        differing.push(i);
        break;
      }
    }
  }
  return differing;
}

/** The segments that differ, from the leaf hashes both sides gave for the same `branches`. */
export function differingSegments(shape: TreeShape, branches: readonly number[], localLeaves: Uint8Array, remoteLeaves: Uint8Array): number[] {
  return differingHashes(localLeaves, remoteLeaves).map((i) => branches[Math.floor(i / shape.leavesPerBranch)]! * shape.leavesPerBranch + (i % shape.leavesPerBranch));
}

/** Keys whose digests differ between two listings (absent on one side counts), sorted. */
export function differingKeys(local: readonly KeyDigest[], remote: readonly KeyDigest[]): KeyDifference[] {
  const id = (e: { bucket: string; key: string }) => JSON.stringify([e.bucket, e.key]);
  const theirs = new Map(remote.map((e) => [id(e), e]));
  const result: KeyDifference[] = [];
  for (const mine of local) {
    const other = theirs.get(id(mine));
    theirs.delete(id(mine));
    if (other?.digest !== mine.digest) result.push({ bucket: mine.bucket, key: mine.key, local: mine.digest, remote: other?.digest });
  }
  for (const other of theirs.values()) result.push({ bucket: other.bucket, key: other.key, local: undefined, remote: other.digest });
  return result.sort((x, y) => (x.bucket < y.bucket ? -1 : x.bucket > y.bucket ? 1 : x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
}

function xorEntry(tree: TictacTree, segment: number, bucket: string, key: string, digest: string): void {
  const [high, low] = entryHash(bucket, key, digest);
  const branch = Math.floor(segment / tree.shape.leavesPerBranch);
  xorWord(tree.leaves, 2 * segment, high);
  xorWord(tree.leaves, 2 * segment + 1, low);
  xorWord(tree.branches, 2 * branch, high);
  xorWord(tree.branches, 2 * branch + 1, low);
}

function xorWord(words: Uint32Array, index: number, value: number): void {
  words[index] = words[index]! ^ value;
}

function entryHash(bucket: string, key: string, digest: string): [number, number] {
  const name = keyBytes(bucket, key);
  const d = utf8.encode(digest);
  const bytes = new Uint8Array(name.length + d.length);
  bytes.set(name);
  bytes.set(d, name.length);
  return [murmur3(bytes, SEED_HIGH), murmur3(bytes, SEED_LOW)];
}

/** Length-prefixed bucket then key, so ("ab","c") and ("a","bc") differ. */
function keyBytes(bucket: string, key: string): Uint8Array {
  const b = utf8.encode(bucket);
  const k = utf8.encode(key);
  const bytes = new Uint8Array(4 + b.length + k.length);
  new DataView(bytes.buffer).setUint32(0, b.length);
  bytes.set(b, 4);
  bytes.set(k, 4 + b.length);
  return bytes;
}

function wordsToBytes(words: Uint32Array): Uint8Array {
  const bytes = new Uint8Array(words.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < words.length; i++) view.setUint32(4 * i, words[i]!);
  return bytes;
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}
