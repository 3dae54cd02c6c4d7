/**
 * Properties of the dotted version vectors: merge is a join (commutative, associative,
 * idempotent), a put with a read's context replaces exactly what that read returned, and
 * concurrent puts without a shared context both survive. States are produced by random
 * histories of writes on random replicas, with random reads and merges, as a cluster would.
 */
import fc from 'fast-check';
import { EMPTY_OBJECT, assertWellFormed, equalObjects, isTombstoned, liveSiblings, merge, objectDescends, update } from './dvv';
import type { NewValue, VersionedObject } from './version';

const opts = { conflictMode: 'siblings' as const, maxSiblings: 1000 };
const nodes = ['a', 'b', 'c'];

function value(text: string, ms = 0, deleted = false): NewValue {
  return { value: new TextEncoder().encode(text), contentType: 'text/plain', lastModifiedMs: ms, deleted };
}
const text = (o: VersionedObject) => o.siblings.map((s) => new TextDecoder().decode(s.value)).sort();

/** A step of a random history: write at replica i with the context of replica j, or sync i <- j. */
const stepArb = fc.record({ kind: fc.constantFrom('write', 'writeBlind', 'sync'), at: fc.nat(2), from: fc.nat(2) });

function runHistory(steps: { kind: string; at: number; from: number }[]): VersionedObject[] {
  const replicas: VersionedObject[] = [EMPTY_OBJECT, EMPTY_OBJECT, EMPTY_OBJECT];
  steps.forEach((step, i) => {
    const at = replicas[step.at]!;
    if (step.kind === 'sync') replicas[step.at] = merge(at, replicas[step.from]!, opts);
    else {
      const ctx = step.kind === 'write' ? replicas[step.from]!.context : {};
      replicas[step.at] = update(at, ctx, nodes[step.at]!, value(`v${i}`, i), opts).object;
    }
  });
  return replicas;
}
const statesArb = fc.array(stepArb, { maxLength: 25 }).map(runHistory);

describe('dotted version vectors', () => {
  test('every state reachable by writes and merges is well formed', () => {
    fc.assert(fc.property(statesArb, (states) => states.forEach((s) => assertWellFormed(s))));
  });

  test('merge is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(statesArb, ([x, y, z]) => {
        expect(equalObjects(merge(x!, y!, opts), merge(y!, x!, opts))).toBe(true);
        expect(equalObjects(merge(merge(x!, y!, opts), z!, opts), merge(x!, merge(y!, z!, opts), opts))).toBe(true);
        expect(equalObjects(merge(x!, x!, opts), x!)).toBe(true);
      }),
    );
  });

  test('a merged state descends from both inputs', () => {
    fc.assert(
      fc.property(statesArb, ([x, y]) => {
        const m = merge(x!, y!, opts);
        expect(objectDescends(m, x!) && objectDescends(m, y!)).toBe(true);
      }),
    );
  });

  test('a put with a read context replaces exactly the values that read returned', () => {
    fc.assert(
      fc.property(statesArb, fc.nat(2), fc.nat(2), ([...states], readAt, writeAt) => {
        const read = states[readAt]!;
        const target = states[writeAt]!;
        const result = update(target, read.context, nodes[writeAt]!, value('new'), opts).object;
        const seen = new Set(read.siblings.map((s) => `${s.dot.node}:${s.dot.counter}`));
        const expected = target.siblings.filter((s) => !read.context[s.dot.node] || read.context[s.dot.node]! < s.dot.counter);
        // Survivors are exactly the target's siblings the read did not cover, plus the new value.
        expect(result.siblings.length).toBe(expected.length + 1);
        for (const s of read.siblings) expect(result.siblings.some((r) => r.dot.node === s.dot.node && r.dot.counter === s.dot.counter)).toBe(false);
        expect(seen.size).toBe(read.siblings.length);
        // Merging the write into any replica also removes what the read saw.
        for (const other of states) {
          const merged = merge(other, result, opts);
          for (const s of read.siblings) expect(merged.siblings.some((r) => r.dot.node === s.dot.node && r.dot.counter === s.dot.counter)).toBe(false);
          expect(text(merged)).toContain('new');
        }
      }),
    );
  });

  test('concurrent puts without a shared context both survive, on any replica order', () => {
    fc.assert(
      fc.property(statesArb, fc.nat(2), fc.nat(2), ([...states], i, j) => {
        const base = states[i]!;
        const first = update(base, base.context, nodes[i]!, value('left'), opts).object;
        const second = update(states[j]!, states[j]!.context, nodes[j]!, value('right'), opts).object;
        if (i === j) return; // the same replica serialises its writes; that is not concurrency
        const merged = merge(first, second, opts);
        expect(text(merged)).toEqual(expect.arrayContaining(['left', 'right']));
      }),
    );
  });

  test('two blind puts on one replica become siblings; a put with their context resolves them', () => {
    const one = update(EMPTY_OBJECT, {}, 'a', value('x'), opts).object;
    const two = update(one, {}, 'a', value('y'), opts).object;
    expect(text(two)).toEqual(['x', 'y']);
    const resolved = update(two, two.context, 'a', value('z'), opts).object;
    expect(text(resolved)).toEqual(['z']);
  });

  test('a delete is a tombstone that a put with its context supersedes', () => {
    const put = update(EMPTY_OBJECT, {}, 'a', value('x'), opts).object;
    const deleted = update(put, put.context, 'a', value('', 1, true), opts).object;
    expect(isTombstoned(deleted)).toBe(true);
    expect(liveSiblings(deleted)).toHaveLength(0);
    const revived = update(deleted, deleted.context, 'b', value('y'), opts).object;
    expect(isTombstoned(revived)).toBe(false);
    expect(text(revived)).toEqual(['y']);
    // An old replica that still holds x cannot bring it back.
    expect(text(merge(put, revived, opts))).toEqual(['y']);
  });

  test('the sibling cap drops the oldest siblings and reports how many', () => {
    let object = EMPTY_OBJECT;
    let dropped = 0;
    for (let i = 0; i < 7; i++) {
      const r = update(object, {}, 'a', value(`v${i}`, i), { conflictMode: 'siblings', maxSiblings: 5 });
      object = r.object;
      dropped += r.droppedSiblings;
    }
    expect(dropped).toBe(2);
    expect(text(object)).toEqual(['v2', 'v3', 'v4', 'v5', 'v6']);
  });

  test('lww keeps only the newest write, whatever the context', () => {
    const lww = { conflictMode: 'lww' as const, maxSiblings: 100 };
    const a = update(EMPTY_OBJECT, {}, 'a', value('old', 1), lww).object;
    const b = update(EMPTY_OBJECT, {}, 'b', value('new', 2), lww).object;
    expect(text(merge(a, b, lww))).toEqual(['new']);
    expect(text(merge(b, a, lww))).toEqual(['new']);
  });

  test('a fresh dot is above both the replica and the client context for that node', () => {
    const r = update(EMPTY_OBJECT, { a: 7 }, 'a', value('x'), opts);
    expect(r.dot).toEqual({ node: 'a', counter: 8 });
  });

  test('objectDescends means merge(a, b) equals a, even when a sibling cap left equal contexts', () => {
    const capped = { conflictMode: 'siblings' as const, maxSiblings: 2 };
    let a = EMPTY_OBJECT;
    for (let i = 0; i < 2; i++) a = update(a, {}, 'a', value(`v${i}`, i), capped).object;
    // b saw the same writes plus one more that pushed v0 out under the cap.
    const b = update(a, {}, 'a', value('v2', 2), capped).object;
    const bContextOnly = { ...a, context: b.context };
    expect(objectDescends(bContextOnly, b)).toBe(false);
    expect(objectDescends(b, a)).toBe(true);
    fc.assert(
      fc.property(statesArb, ([x, y]) => {
        expect(objectDescends(x!, y!)).toBe(equalObjects(merge(x!, y!, opts), x!));
      }),
    );
  });
});
