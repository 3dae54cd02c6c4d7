/** Quorum outcomes for every small combination, replica selection under failures, read merging. */
import { EMPTY_OBJECT, update } from './dvv';
import { majority, parseQuorumSpec, readOutcome, resolveQuorum, resolveRead, selectReadTargets, selectWriteTargets, validateRead, validateWrite, writeOutcome } from './quorum';

const opts = { conflictMode: 'siblings' as const, maxSiblings: 100 };

describe('quorum arithmetic', () => {
  test('specs resolve against N', () => {
    expect(resolveQuorum('one', 3)).toBe(1);
    expect(resolveQuorum('quorum', 3)).toBe(2);
    expect(resolveQuorum('quorum', 5)).toBe(3);
    expect(resolveQuorum('all', 5)).toBe(5);
    expect(resolveQuorum(2, 5)).toBe(2);
    expect(parseQuorumSpec('quorum')).toBe('quorum');
    expect(parseQuorumSpec('2')).toBe(2);
    expect(parseQuorumSpec('two')).toBeUndefined();
    expect(parseQuorumSpec('-1')).toBeUndefined();
    expect(majority(4)).toBe(3);
  });

  test('impossible requirements are named', () => {
    expect(validateWrite({ w: 4, dw: 0, pw: 0 }, 3)).toMatch(/w=4/);
    expect(validateWrite({ w: 2, dw: 3, pw: 0 }, 3)).toMatch(/dw=3/);
    expect(validateWrite({ w: 2, dw: 1, pw: 4 }, 3)).toMatch(/pw=4/);
    expect(validateWrite({ w: 0, dw: 0, pw: 0 }, 3)).toMatch(/w=0/);
    expect(validateWrite({ w: 3, dw: 3, pw: 3 }, 3)).toBeUndefined();
    expect(validateRead({ r: 4, pr: 0 }, 3)).toMatch(/r=4/);
    expect(validateRead({ r: 1, pr: 4 }, 3)).toMatch(/pr=4/);
  });

  test('write outcome is met exactly when w, dw and pw hold, failed exactly when they cannot', () => {
    // Exhaustive over 3 targets: each either acked (durable or not, primary or not) or outstanding or failed.
    const states = ['ackDurablePrimary', 'ackPrimary', 'ackDurableFallback', 'ackFallback', 'pendingPrimary', 'pendingFallback', 'failed'] as const;
    for (const a of states) for (const b of states) for (const c of states) for (const w of [1, 2, 3]) for (const dw of [0, 1, 2]) for (const pw of [0, 1, 2]) {
      const all = [a, b, c];
      const acks = all.filter((s) => s.startsWith('ack')).map((s) => ({ durable: s.includes('Durable'), primary: s.includes('Primary') }));
      const outstanding = all.filter((s) => s.startsWith('pending')).map((s) => s === 'pendingPrimary');
      const outcome = writeOutcome({ w, dw, pw }, acks, outstanding);
      const metNow = acks.length >= w && acks.filter((x) => x.durable).length >= dw && acks.filter((x) => x.primary).length >= pw;
      const bestAcks = [...acks, ...outstanding.map((p) => ({ durable: true, primary: p }))];
      const possible = bestAcks.length >= w && bestAcks.filter((x) => x.durable).length >= dw && bestAcks.filter((x) => x.primary).length >= pw;
      expect(outcome).toBe(metNow ? 'met' : possible ? 'pending' : 'failed');
    }
  });

  test('read outcome counts primaries for pr', () => {
    expect(readOutcome({ r: 2, pr: 0 }, [{ primary: false }, { primary: false }], [])).toBe('met');
    expect(readOutcome({ r: 2, pr: 2 }, [{ primary: true }, { primary: false }], [])).toBe('failed');
    expect(readOutcome({ r: 2, pr: 2 }, [{ primary: true }], [true])).toBe('pending');
    expect(readOutcome({ r: 2, pr: 0 }, [{ primary: true }], [])).toBe('failed');
  });
});

describe('replica selection', () => {
  const list = { primaries: ['a', 'b', 'c'], fallbacks: ['d', 'e'] };
  test('all up: the primaries, no hints', () => {
    expect(selectWriteTargets(list, () => true)).toEqual([{ node: 'a' }, { node: 'b' }, { node: 'c' }]);
  });
  test('a down primary is replaced by the next live fallback holding a hint', () => {
    expect(selectWriteTargets(list, (n) => n !== 'b' && n !== 'd')).toEqual([{ node: 'a' }, { node: 'e', hintFor: 'b' }, { node: 'c' }]);
  });
  test('with too few live nodes fewer targets are returned', () => {
    expect(selectWriteTargets(list, (n) => n === 'a')).toEqual([{ node: 'a' }]);
  });
  test('consistent reads use primaries only', () => {
    expect(selectReadTargets(list, (n) => n !== 'a', true)).toEqual([{ node: 'b' }, { node: 'c' }]);
    expect(selectReadTargets(list, (n) => n !== 'a', false)).toEqual([{ node: 'b' }, { node: 'c' }, { node: 'd' }]);
  });
});

describe('read resolution', () => {
  const v = (text: string) => ({ value: new TextEncoder().encode(text), contentType: 'text/plain', lastModifiedMs: 0, deleted: false });
  test('a replica that missed a write is named stale, and so is one that never saw the key', () => {
    const old = update(EMPTY_OBJECT, {}, 'a', v('1'), opts).object;
    const fresh = update(old, old.context, 'a', v('2'), opts).object;
    const { merged, stale } = resolveRead([{ node: 'a', object: fresh }, { node: 'b', object: old }, { node: 'c', object: undefined }], opts);
    expect(merged).toEqual(fresh);
    expect(stale).toEqual(['b', 'c']);
  });
  test('concurrent replicas both get the merged siblings', () => {
    const x = update(EMPTY_OBJECT, {}, 'a', v('x'), opts).object;
    const y = update(EMPTY_OBJECT, {}, 'b', v('y'), opts).object;
    const { merged, stale } = resolveRead([{ node: 'a', object: x }, { node: 'b', object: y }], opts);
    expect(merged?.siblings).toHaveLength(2);
    expect(stale).toEqual(['a', 'b']);
  });
  test('nothing anywhere: no value, nothing to repair', () => {
    expect(resolveRead([{ node: 'a', object: undefined }], opts)).toEqual({ merged: undefined, stale: [] });
  });
});
