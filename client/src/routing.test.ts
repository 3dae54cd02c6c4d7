/**
 * The partition-aware router with a fake clock and a scripted ring fetch: which endpoints a key
 * goes to first, when the ring is fetched again (never two fetches at once, never closer than the
 * gap, after an announced newer version, after the interval), and how down and failed endpoints
 * are passed over. No sockets: the client and node tests cover the HTTP side.
 */
import { partitionOf } from '../../node/src/core/partition';
import type { RingInfo } from './admin';
import { primaryEndpoints, RingRouter, routingRingOf, type RoutingRing } from './routing';

const A = 'http://127.0.0.1:8001';
const B = 'http://127.0.0.1:8002';
const C = 'http://127.0.0.1:8003';
const Q = 8;

/** A ring answer as GET /v1/ring gives it: partition p owned by two of a, b, c in turn. */
function ringInfo(version: number, options: { down?: string[]; states?: Record<string, string> } = {}): RingInfo {
  const ids = ['a', 'b', 'c'];
  const urls: Record<string, string> = { a: A, b: B, c: C };
  const members = ids.map((id) => ({
    id,
    clientUrl: `${urls[id]!}/`,
    peerUrl: undefined,
    state: options.states?.[id] ?? 'normal',
    up: !(options.down ?? []).includes(id),
    phi: 0,
    ownership: undefined,
    self: false,
  }));
  const partitions = Array.from({ length: Q }, (_, partition) => ({ partition, owners: [ids[partition % 3]!, ids[(partition + 1) % 3]!] }));
  return { version, partitionCount: Q, replicationFactor: 2, members, raw: { version, partitionCount: Q, members, partitions } };
}

function ringOf(version: number, options?: Parameters<typeof ringInfo>[1]): RoutingRing {
  const ring = routingRingOf(ringInfo(version, options));
  if (ring === undefined) throw new Error('test ring did not decode');
  return ring;
}

/** A key of bucket "b" whose partition is `partition`. */
function keyIn(partition: number): string {
  for (let i = 0; i < 10_000; i++) if (partitionOf('b', `k${i}`, Q) === partition) return `k${i}`;
  throw new Error(`no key in partition ${partition}`);
}

interface Harness {
  router: RingRouter;
  clock: { nowMs: number };
  fetches: (string | undefined)[];
  /** Resolves the oldest unanswered fetch with `ring`. */
  answer(ring: RoutingRing | undefined): Promise<void>;
}

function harness(mode: 'partition-aware' | 'any' = 'partition-aware'): Harness {
  const clock = { nowMs: 1_000_000 };
  const fetches: (string | undefined)[] = [];
  const waiting: ((ring: RoutingRing | undefined) => void)[] = [];
  const router = new RingRouter({
    mode,
    fetchRing: (endpoint) => {
      fetches.push(endpoint);
      return new Promise((resolve) => waiting.push(resolve));
    },
    nowMs: () => clock.nowMs,
    refreshIntervalMs: 10_000,
    refreshGapMsMin: 1_000,
    suspectMs: 5_000,
  });
  return {
    router,
    clock,
    fetches,
    async answer(ring) {
      waiting.shift()?.(ring);
      // The refresh settles in microtasks; one macrotask later it has.
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

test('the ring answer decodes to client URLs per partition, without trailing slashes, and members judged down', () => {
  const ring = ringOf(3, { down: ['c'] });
  expect(ring.version).toBe(3);
  expect(ring.owners[0]).toEqual([A, B]);
  expect(ring.owners[2]).toEqual([C, A]);
  expect([...ring.down]).toEqual([C]);
  expect(primaryEndpoints(ring, 'b', keyIn(1))).toEqual([B, C]);
});

test('an answer routing cannot use (no partitions, a partition count that is not a power of two) decodes to undefined', () => {
  const info = ringInfo(1);
  expect(routingRingOf({ ...info, raw: { ...info.raw, partitions: undefined } })).toBeUndefined();
  expect(routingRingOf({ ...info, partitionCount: 6 })).toBeUndefined();
  expect(routingRingOf({ ...info, version: undefined })).toBeUndefined();
});

test('members that left or are unknown are not owners a request can go to', () => {
  const ring = ringOf(1, { states: { b: 'left' } });
  expect(ring.owners[0]).toEqual([A]);
});

test('before a ring is known nothing is preferred, and the first request starts exactly one fetch', async () => {
  const h = harness();
  expect(h.router.endpointsFor('b', keyIn(0))).toEqual([]);
  expect(h.router.endpointsFor('b', keyIn(1))).toEqual([]);
  expect(h.fetches).toHaveLength(1);
  await h.answer(ringOf(1));
  expect(h.router.ringVersion).toBe(1);
});

test('a key goes to its primaries first, the first one rotating between requests', async () => {
  const h = harness();
  h.router.endpointsFor('b', keyIn(0));
  await h.answer(ringOf(1));
  const key = keyIn(0);
  const firsts = new Set([0, 1, 2, 3].map(() => h.router.endpointsFor('b', key)[0]));
  expect(firsts).toEqual(new Set([A, B]));
  expect(new Set(h.router.endpointsFor('b', key))).toEqual(new Set([A, B]));
});

test('primaries judged down by the ring, or that failed to answer lately, are passed over until the suspicion ends', async () => {
  const h = harness();
  h.router.endpointsFor('b', keyIn(0));
  await h.answer(ringOf(1, { down: ['a'] }));
  expect(h.router.endpointsFor('b', keyIn(0))).toEqual([B]);
  h.router.endpointFailed(B);
  expect(h.router.endpointsFor('b', keyIn(0))).toEqual([]);
  expect(h.router.endpointsFor('b', keyIn(1))).toEqual([C]);
  h.clock.nowMs += 5_001;
  expect(h.router.endpointsFor('b', keyIn(1))).toContain(B);
});

test('a newer announced version fetches the ring from the announcing node, at most once at a time and once per gap', async () => {
  const h = harness();
  h.router.endpointsFor('b', keyIn(0));
  await h.answer(ringOf(1));
  h.clock.nowMs += 1_500;
  h.router.observe(C, '1');
  expect(h.fetches).toHaveLength(1);
  h.router.observe(C, '2');
  h.router.observe(B, '2');
  expect(h.fetches).toEqual([undefined, C]);
  await h.answer(ringOf(2));
  expect(h.router.ringVersion).toBe(2);
  // A node announcing an even newer version within the gap waits for the gap to pass.
  h.router.observe(B, '3');
  expect(h.fetches).toHaveLength(2);
  h.clock.nowMs += 1_000;
  h.router.endpointsFor('b', keyIn(0));
  expect(h.fetches).toEqual([undefined, C, B]);
});

test('an older ring never replaces a newer one, and a ring still behind the announced version is fetched again after the gap', async () => {
  const h = harness();
  h.router.endpointsFor('b', keyIn(0));
  await h.answer(ringOf(5));
  h.clock.nowMs += 1_000;
  h.router.observe(A, '6');
  await h.answer(ringOf(4));
  expect(h.router.ringVersion).toBe(5);
  h.clock.nowMs += 999;
  h.router.endpointsFor('b', keyIn(0));
  expect(h.fetches).toHaveLength(2);
  h.clock.nowMs += 1;
  h.router.endpointsFor('b', keyIn(0));
  expect(h.fetches).toHaveLength(3);
});

test('without announcements the ring is fetched again after the interval; after a failed fetch only the interval applies', async () => {
  const h = harness();
  h.router.endpointsFor('b', keyIn(0));
  await h.answer(undefined);
  h.clock.nowMs += 9_999;
  h.router.endpointsFor('b', keyIn(0));
  expect(h.fetches).toHaveLength(1);
  h.clock.nowMs += 1;
  h.router.endpointsFor('b', keyIn(0));
  expect(h.fetches).toHaveLength(2);
  await h.answer(ringOf(1));
  h.clock.nowMs += 9_999;
  h.router.endpointsFor('b', keyIn(0));
  expect(h.fetches).toHaveLength(2);
  h.clock.nowMs += 1;
  h.router.endpointsFor('b', keyIn(0));
  expect(h.fetches).toHaveLength(3);
});

test("routing 'any' prefers nothing and never fetches the ring", () => {
  const h = harness('any');
  h.router.observe(A, '9');
  expect(h.router.endpointsFor('b', keyIn(0))).toEqual([]);
  expect(h.fetches).toHaveLength(0);
});
