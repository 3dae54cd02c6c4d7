/**
 * The two-generation cache: never holds more than its bound, and keeps whatever was used within
 * the last half-bound insertions, including entries found again in the older generation.
 */
import { RecentCache } from './recentCache';

test('holds at most entriesMax entries however many are added', () => {
  const cache = new RecentCache<number, number>(8);
  for (let i = 0; i < 1000; i++) {
    cache.set(i, i);
    expect(cache.size).toBeLessThanOrEqual(8);
  }
  expect(cache.get(999)).toBe(999);
  expect(cache.get(0)).toBeUndefined();
});

test('an entry used again survives the turnover of generations', () => {
  const cache = new RecentCache<string, number>(4);
  cache.set('hot', 1);
  for (let i = 0; i < 50; i++) {
    cache.set(`cold-${i}`, i);
    // Touched once per two insertions: it is always in one of the two generations.
    if (i % 2 === 0) expect(cache.get('hot')).toBe(1);
  }
  expect(cache.get('cold-0')).toBeUndefined();
});

test('a bound below 2 is refused', () => {
  expect(() => new RecentCache(1)).toThrow(RangeError);
});
