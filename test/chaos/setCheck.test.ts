/**
 * The set checker's rules on hand-made histories: an add carries every sibling forward, and the
 * judgement counts lost, unexpected, recovered and malformed exactly as Jepsen's set test does.
 * These show the checker can fail: a final value missing an acknowledged element is a loss.
 */
import { addedValue, judgeSet, unionOfSiblings, type SetHistory } from './setCheck';

function history(attempted: string[], acknowledged: string[]): SetHistory {
  return { attempted: new Set(attempted), acknowledged: new Set(acknowledged) };
}

test('an add writes the union of every sibling plus the new element, sorted', () => {
  expect(addedValue(['["a","c"]', '["b"]', 'not json'], 'd')).toBe('["a","b","c","d"]');
  expect(addedValue([], 'x')).toBe('["x"]');
});

test('malformed siblings are counted, not silently merged', () => {
  expect(unionOfSiblings(['["a"]', '{"a":1}', '[1]', '']).malformed).toBe(3);
});

test('an acknowledged element missing from every sibling is lost', () => {
  const verdict = judgeSet(history(['a', 'b', 'c'], ['a', 'b']), ['["a"]', '["c"]']);
  expect(verdict).toEqual({ total: 3, acknowledged: 2, lost: ['b'], unexpected: [], recovered: 1, malformed: 0 });
});

test('an element no client attempted is unexpected', () => {
  const verdict = judgeSet(history(['a'], ['a']), ['["a","zz"]']);
  expect(verdict.unexpected).toEqual(['zz']);
  expect(verdict.lost).toEqual([]);
});

test('elements spread over siblings all count as present', () => {
  const verdict = judgeSet(history(['a', 'b'], ['a', 'b']), ['["a"]', '["b"]']);
  expect(verdict.lost).toEqual([]);
});
