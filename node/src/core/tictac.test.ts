/**
 * Tictac trees: property tests of the three facts anti-entropy relies on. Incremental updates
 * equal a rebuild (so trees never need rebuilding while the node runs), equal contents give equal
 * roots and different contents different roots (so a root comparison is enough when in sync),
 * and the descent from root to branches to leaves finds exactly the segments that changed.
 */
import fc from 'fast-check';
import {
  applyChange,
  branchHashes,
  buildTree,
  createTree,
  differingHashes,
  differingKeys,
  differingSegments,
  leafHashes,
  rootHash,
  segmentOf,
  setSegment,
  versionDigest,
  type KeyDigest,
  type TreeShape,
} from './tictac';
import type { VersionedObject } from './version';

const SHAPE: TreeShape = { branchCount: 8, leavesPerBranch: 16 };
const keyArb = fc.record({ bucket: fc.constantFrom('a', 'b', 'ab'), key: fc.string({ maxLength: 6 }) });
const digestArb = fc.stringMatching(/^[0-9a-f]{16}$/);
/** A change: set the key to a digest, or delete it (null). */
const changesArb = fc.array(fc.tuple(keyArb, fc.option(digestArb, { nil: null })), { maxLength: 60 });

const idOf = (k: { bucket: string; key: string }) => JSON.stringify([k.bucket, k.key]);
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((byte, i) => byte === b[i]);

function entriesOf(state: Map<string, KeyDigest>): KeyDigest[] {
  return [...state.values()];
}

/** Applies changes to a tree incrementally and to a plain map; returns both. */
function replay(changes: [{ bucket: string; key: string }, string | null][]) {
  const tree = createTree(SHAPE);
  const state = new Map<string, KeyDigest>();
  for (const [k, digest] of changes) {
    const before = state.get(idOf(k))?.digest;
    applyChange(tree, k.bucket, k.key, before, digest ?? undefined);
    if (digest === null) state.delete(idOf(k));
    else state.set(idOf(k), { ...k, digest });
  }
  return { tree, state };
}

describe('tictac trees', () => {
  test('incremental updates equal a rebuild from scratch, whatever the order of the entries', () => {
    fc.assert(
      fc.property(changesArb, fc.integer(), (changes, seed) => {
        const { tree, state } = replay(changes);
        const entries = entriesOf(state);
        // A deterministic shuffle of the rebuild's input order.
        entries.sort((x, y) => ((idOf(x).length * 31 + seed) % 7) - ((idOf(y).length * 31 + seed) % 7));
        const rebuilt = buildTree(SHAPE, entries);
        expect(Array.from(tree.leaves)).toEqual(Array.from(rebuilt.leaves));
        expect(Array.from(tree.branches)).toEqual(Array.from(rebuilt.branches));
      }),
    );
  });

  test('equal contents give equal roots, and different contents different roots', () => {
    fc.assert(
      fc.property(changesArb, changesArb, (a, b) => {
        const x = replay(a);
        const y = replay(b);
        const equalContents = JSON.stringify([...x.state.entries()].sort()) === JSON.stringify([...y.state.entries()].sort());
        expect(same(rootHash(x.tree), rootHash(y.tree))).toBe(equalContents);
      }),
    );
  });

  test('descending root -> branches -> leaves finds exactly the segments whose keys changed', () => {
    fc.assert(
      fc.property(changesArb, changesArb, (base, edits) => {
        const local = replay(base);
        const remote = replay([...base, ...edits]);
        const changed = differingKeys(entriesOf(local.state), entriesOf(remote.state));
        const expected = [...new Set(changed.map((k) => segmentOf(SHAPE, k.bucket, k.key)))].sort((p, q) => p - q);

        const branches = differingHashes(branchHashes(local.tree), branchHashes(remote.tree));
        const segments = differingSegments(SHAPE, branches, leafHashes(local.tree, branches), leafHashes(remote.tree, branches));
        expect(segments.sort((p, q) => p - q)).toEqual(expected);
        expect(same(rootHash(local.tree), rootHash(remote.tree))).toBe(expected.length === 0);
      }),
    );
  });

  test('differingKeys lists keys missing on either side or with other digests, and nothing else', () => {
    fc.assert(
      fc.property(changesArb, changesArb, (a, b) => {
        const x = replay(a).state;
        const y = replay(b).state;
        const diff = differingKeys(entriesOf(x), entriesOf(y));
        const ids = new Set([...x.keys(), ...y.keys()]);
        const expected = [...ids].filter((id) => x.get(id)?.digest !== y.get(id)?.digest);
        expect(diff.map(idOf).sort()).toEqual(expected.sort());
        for (const d of diff) {
          expect(d.local).toBe(x.get(idOf(d))?.digest);
          expect(d.remote).toBe(y.get(idOf(d))?.digest);
        }
      }),
    );
  });

  test('setSegment recomputes a drifted segment from its entries and keeps the branch consistent', () => {
    fc.assert(
      fc.property(changesArb, keyArb, digestArb, (changes, stray, digest) => {
        const { tree, state } = replay(changes);
        // Drift: an entry the store does not hold lands in the tree (a missed update).
        applyChange(tree, stray.bucket, stray.key, undefined, digest);
        const segment = segmentOf(SHAPE, stray.bucket, stray.key);
        setSegment(tree, segment, entriesOf(state).filter((e) => segmentOf(SHAPE, e.bucket, e.key) === segment));
        const rebuilt = buildTree(SHAPE, entriesOf(state));
        expect(Array.from(tree.leaves)).toEqual(Array.from(rebuilt.leaves));
        expect(Array.from(tree.branches)).toEqual(Array.from(rebuilt.branches));
      }),
    );
  });

  test('a version digest changes with the context and with the sibling dots, not with the key order of the context', () => {
    const sibling = (node: string, counter: number) => ({ dot: { node, counter }, value: new Uint8Array(), contentType: 't', lastModifiedMs: 1, deleted: false });
    const a: VersionedObject = { context: { n1: 2, n2: 1 }, siblings: [sibling('n1', 2)] };
    const reordered: VersionedObject = { context: { n2: 1, n1: 2 }, siblings: [sibling('n1', 2)] };
    const newerContext: VersionedObject = { context: { n1: 3, n2: 1 }, siblings: [sibling('n1', 2)] };
    const otherDots: VersionedObject = { context: { n1: 2, n2: 1 }, siblings: [sibling('n1', 2), sibling('n2', 1)] };
    expect(versionDigest(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(versionDigest(reordered)).toBe(versionDigest(a));
    expect(versionDigest(newerContext)).not.toBe(versionDigest(a));
    expect(versionDigest(otherDots)).not.toBe(versionDigest(a));
  });
});
