/**
 * DynamoClient against real node processes (dist/node/src/main.js on temporary RocksDB
 * directories, loopback only). Proves the client's contract end to end: round trips, siblings and
 * their resolution through contexts, failover past a dead endpoint, typed server errors, and
 * partition-aware routing on a small cluster (requests reach replicas, a join is learnt from the
 * ring version the nodes announce, a dead replica is passed over).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { partitionOf } from '../../node/src/core/partition';
import { DynamoClient } from './client';
import { DynamoError } from './errors';
import { join, keyRequestsAnswered, metricSum, ringOf, startCluster, waitSeenDown, waitSettled, clusterArgs, type RingAnswer } from './testing/cluster';
import { freePort, startNode, type NodeProcess } from './testing/nodeProcess';
import type { Sibling } from './types';

let node: NodeProcess;
const clients: DynamoClient[] = [];

function client(endpoints = [node.url], extra: Partial<ConstructorParameters<typeof DynamoClient>[0]> = {}): DynamoClient {
  const c = new DynamoClient({ endpoints, timeoutMs: 5000, retries: 1, ...extra });
  clients.push(c);
  return c;
}

const sortedTexts = (values: readonly Sibling[]): string[] => values.map((v) => v.value.toString('utf8')).sort();

beforeAll(async () => {
  node = await startNode({ extraArgs: ['--max-value-bytes', '1024'] });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await node?.stop();
});

test('put, get and delete round-trip a value with its content type and context', async () => {
  const c = client();
  const put = await c.put('rt', 'k1', '{"n":1}', { contentType: 'application/json' });
  expect(typeof put.context).toBe('string');
  const got = await c.get('rt', 'k1');
  expect(got.found).toBe(true);
  expect(got.values).toHaveLength(1);
  expect(got.values[0]!.value.toString()).toBe('{"n":1}');
  expect(got.values[0]!.contentType).toMatch(/^application\/json/);
  await c.delete('rt', 'k1');
  const gone = await c.get('rt', 'k1');
  expect(gone).toMatchObject({ found: false, values: [] });
  // The tombstone's context lets a later put supersede the delete.
  expect(gone.context).toBeDefined();
  await c.put('rt', 'k1', 'back', { context: gone.context! });
  expect((await c.get('rt', 'k1')).values.map((v) => v.value.toString())).toEqual(['back']);
});

test('binary values come back byte for byte', async () => {
  const c = client();
  const bytes = Buffer.from([0, 1, 2, 250, 255, 10, 13]);
  await c.put('rt', 'bin', bytes);
  expect((await c.get('rt', 'bin')).values[0]!.value).toEqual(bytes);
});

test('two puts without a context become siblings, and update resolves them into one value', async () => {
  const c = client();
  await c.put('sib', 'k', 'red');
  await c.put('sib', 'k', 'blue');
  const before = await c.get('sib', 'k');
  expect(sortedTexts(before.values)).toEqual(['blue', 'red']);
  let seen: string[] = [];
  await c.update('sib', 'k', (siblings) => {
    seen = sortedTexts(siblings);
    return seen.join('+');
  });
  expect(seen).toEqual(['blue', 'red']);
  const after = await c.get('sib', 'k');
  expect(after.values.map((v) => v.value.toString())).toEqual(['blue+red']);
});

test('update also runs on an absent key (no siblings) and on a single value', async () => {
  const c = client();
  const counter = (siblings: readonly Sibling[]): string => String(Number(siblings[0]?.value.toString() ?? '0') + 1);
  await c.update('count', 'c', counter);
  await c.update('count', 'c', counter);
  expect((await c.get('count', 'c')).values.map((v) => v.value.toString())).toEqual(['2']);
});

test('a client-wide resolver makes get return one value and write it back', async () => {
  const plain = client();
  await plain.put('res', 'k', 'a');
  await plain.put('res', 'k', 'b');
  const resolving = client([node.url], { resolveSiblings: (siblings) => sortedTexts(siblings).join(',') });
  const got = await resolving.get('res', 'k');
  expect(got.values.map((v) => v.value.toString())).toEqual(['a,b']);
  // Written back: a reader without a resolver sees the single value too.
  expect((await plain.get('res', 'k', { resolveSiblings: false })).values.map((v) => v.value.toString())).toEqual(['a,b']);
});

test('when the first endpoint is a closed port, every call fails over to the live node', async () => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  // Routing 'any': a partition-aware client would go straight to the node, the key's only replica.
  const c = client([closed, node.url], { retries: 1, routing: 'any' });
  // Rotation starts odd calls at the closed port, so both orders are exercised.
  for (let i = 0; i < 4; i++) {
    await c.put('fo', `k${i}`, `v${i}`);
    expect((await c.get('fo', `k${i}`)).values[0]!.value.toString()).toBe(`v${i}`);
  }
});

test('with only dead endpoints the call ends in a typed UNAVAILABLE error after bounded attempts', async () => {
  const c = client([`http://127.0.0.1:${await freePort()}`], { retries: 2, backoffMsBase: 1 });
  await expect(c.get('x', 'y')).rejects.toMatchObject({ code: 'UNAVAILABLE', status: 0, attempts: 3 });
});

test('a value over the limit is a typed VALUE_TOO_LARGE error and the stored value is unchanged', async () => {
  const c = client();
  await c.put('big', 'k', 'small');
  const error = await c.put('big', 'k', Buffer.alloc(2048, 1)).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(DynamoError);
  expect(error).toMatchObject({ code: 'VALUE_TOO_LARGE', status: 413 });
  expect((await c.get('big', 'k')).values.map((v) => v.value.toString())).toEqual(['small']);
});

test('a tampered context is a typed CONTEXT_INVALID error', async () => {
  await expect(client().put('ctx', 'k', 'v', { context: 'not-a-context' })).rejects.toMatchObject({ code: 'CONTEXT_INVALID', status: 400 });
});

test('status names the node', async () => {
  expect((await client().status()).nodeId).toBe('n1');
});

describe('partition-aware routing on a real cluster (3 nodes, then 4; N=2, Q=16)', () => {
  const BUCKET = 'route';
  let nodes: NodeProcess[] = [];
  const byId = (id: string): NodeProcess => nodes[Number(id.slice(1)) - 1]!;
  const ownersOf = (ring: RingAnswer, key: string): string[] => [...ring.partitions.find((p) => p.partition === partitionOf(BUCKET, key, ring.partitionCount))!.owners].sort();
  /** `count` keys whose primaries are exactly `owners`. */
  const keysOwnedBy = (ring: RingAnswer, owners: string[], count: number): string[] => {
    const keys: string[] = [];
    for (let i = 0; keys.length < count && i < 100_000; i++) if (ownersOf(ring, `k${i}`).join() === [...owners].sort().join()) keys.push(`k${i}`);
    return keys;
  };
  const answeredBy = async (): Promise<number[]> => Promise.all(nodes.map((n) => keyRequestsAnswered(n)));
  const forwardedWrites = async (): Promise<number> => (await Promise.all(nodes.map((n) => metricSum(n, 'dynamokv_forwarded_writes_total')))).reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    nodes = await startCluster(3, { replication: 2, partitions: 16 });
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  test('every request for a key goes to one of its replicas: no forwarding, nothing reaches the third node', async () => {
    const ring = await ringOf(nodes[0]!);
    const keys = keysOwnedBy(ring, ['n1', 'n2'], 10);
    // The control: rotating over all endpoints, a third of the requests land on n3, which forwards the writes.
    const rotating = client(nodes.map((n) => n.url), { routing: 'any' });
    const beforeAny = await answeredBy();
    const forwardsBeforeAny = await forwardedWrites();
    for (const key of keys) await rotating.put(BUCKET, key, 'v0');
    const afterAny = await answeredBy();
    expect(afterAny[2]! - beforeAny[2]!).toBeGreaterThan(0);
    expect(await forwardedWrites()).toBeGreaterThan(forwardsBeforeAny);

    const routed = client(nodes.map((n) => n.url));
    await routed.refreshRing();
    expect(routed.ringVersion).toBe(ring.version);
    const before = await answeredBy();
    const forwardsBefore = await forwardedWrites();
    for (const key of keys) {
      const { context } = await routed.get(BUCKET, key);
      await routed.put(BUCKET, key, `v1-${key}`, { context });
      expect((await routed.get(BUCKET, key)).values.map((v) => v.value.toString())).toEqual([`v1-${key}`]);
    }
    const after = await answeredBy();
    expect(after.map((count, i) => count - before[i]!)).toEqual([expect.any(Number), expect.any(Number), 0]);
    expect(after[0]! - before[0]! + after[1]! - before[1]!).toBe(3 * keys.length);
    expect(await forwardedWrites()).toBe(forwardsBefore);
  });

  test('after a join the client learns the new ring from the version the nodes announce, and routes to the new member', async () => {
    // The interval is far away: only the X-Dynamo-Ring-Version header can make this client refresh.
    const c = client(nodes.map((n) => n.url), { ringRefreshIntervalMs: 3_600_000 });
    await c.refreshRing();
    const versionBefore = c.ringVersion!;
    const n4 = await startNode({ nodeId: 'n4', extraArgs: clusterArgs({ replication: 2, partitions: 16 }) });
    nodes.push(n4);
    await join(n4, nodes[0]!);
    const ring = await waitSettled(nodes, ['n1', 'n2', 'n3', 'n4']);
    expect(ring.version).toBeGreaterThan(versionBefore);
    // Any answer announces the new version; the refresh it starts runs in the background.
    for (let attempt = 0; attempt < 50 && c.ringVersion !== ring.version; attempt++) {
      await c.get(BUCKET, 'probe');
      await sleep(100);
    }
    expect(c.ringVersion).toBe(ring.version);
    // Keys of a partition the new member owns: every request goes to n4 or its co-owner.
    const owners = [...ring.partitions.find((p) => p.owners.includes('n4'))!.owners];
    const keys = keysOwnedBy(ring, owners, 6);
    const before = await answeredBy();
    for (const key of keys) await c.put(BUCKET, key, 'on-n4');
    const served = (await answeredBy()).map((count, i) => count - before[i]!);
    expect(served.filter((_, i) => !owners.includes(`n${i + 1}`))).toEqual([0, 0]);
    expect(served[3]).toBeGreaterThan(0);
    expect(served.reduce((a, b) => a + b, 0)).toBe(keys.length);
  });

  test('a replica that is down is passed over: requests fall back to the key\'s other replica and succeed', async () => {
    const c = client(nodes.map((n) => n.url), { ringRefreshIntervalMs: 3_600_000 });
    await c.refreshRing();
    const ring = await ringOf(nodes[0]!);
    const keys = keysOwnedBy(ring, ['n1', 'n2'], 6);
    for (const key of keys) await c.put(BUCKET, key, 'before');
    // The client's ring still says n2 is up: it learns otherwise only from the refused connection.
    await byId('n2').stop({ keepData: true });
    const survivors = nodes.filter((n) => n !== byId('n2'));
    await waitSeenDown(survivors, 'n2');
    const before = await Promise.all(survivors.map((n) => keyRequestsAnswered(n)));
    for (const key of keys) {
      await c.put(BUCKET, key, `after-${key}`, { context: (await c.get(BUCKET, key)).context });
      expect((await c.get(BUCKET, key)).values.map((v) => v.value.toString())).toEqual([`after-${key}`]);
    }
    const after = await Promise.all(survivors.map((n) => keyRequestsAnswered(n)));
    // n1 (the other replica) answered every request; n3 and n4 none.
    expect(after.map((count, i) => count - before[i]!)).toEqual([3 * keys.length, 0, 0]);
  });
});
