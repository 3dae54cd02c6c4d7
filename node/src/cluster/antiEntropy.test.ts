/**
 * Anti-entropy on an in-process cluster (production code, in-memory storage and network,
 * virtual time). Replicas are made to diverge behind the coordinator's back, then virtual time
 * runs with no client read at all, so read repair cannot be what heals them: every test checks
 * that no read repair happened and that the anti-entropy counters saw the repairs.
 */
import { EMPTY_OBJECT, equalObjects, update } from '../core/dvv';
import { partitionOf, preferenceList } from '../core/partition';
import { activeMembers } from '../core/ring';
import { buildTree, rootHash, versionDigest, type KeyDigest } from '../core/tictac';
import type { VersionedObject } from '../core/version';
import { MemoryCluster, type SimNode } from './memoryCluster';

const Q = 16;
const value = (v: string) => ({ value: Buffer.from(v), contentType: 'text/plain', lastModifiedMs: 1, deleted: false });
const options = { conflictMode: 'siblings' as const, maxSiblings: 100 };

function primariesOf(cluster: MemoryCluster, key: string): string[] {
  const ring = cluster.nodes[0]!.membership.ring();
  return [...preferenceList(ring.plan, partitionOf('b', key, Q), activeMembers(ring).map((m) => m.id)).primaries];
}

async function put(node: SimNode, key: string, v: string): Promise<void> {
  await node.coordinator.put({ bucket: 'b', key, value: value(v), context: {}, write: { w: 1, dw: 0, pw: 0 }, conflictMode: 'siblings' });
}

/** A write (with the replica's own context) stored on one replica only, as if every message to the others was lost. */
async function writeOnlyTo(node: SimNode, key: string, v: string): Promise<void> {
  await node.store.update(partitionOf('b', key, Q), 'b', key, (current) => update(current ?? EMPTY_OBJECT, current?.context ?? {}, `${node.id}.direct`, value(v), options).object);
}

/** Keys whose primaries do not all hold equal objects. */
async function divergent(cluster: MemoryCluster, keys: readonly string[]): Promise<string[]> {
  const result: string[] = [];
  for (const key of keys) {
    const copies: (VersionedObject | undefined)[] = [];
    for (const id of primariesOf(cluster, key)) copies.push(await cluster.node(id).store.read(partitionOf('b', key, Q), 'b', key));
    const first = copies[0];
    if (copies.some((c) => c === undefined || first === undefined || !equalObjects(c, first))) result.push(key);
  }
  return result;
}

const sum = (cluster: MemoryCluster, pick: (n: SimNode) => number) => cluster.nodes.reduce((total, n) => total + pick(n), 0);

/** The tree a scan of the node's storage would build from scratch. */
async function rebuiltRoot(node: SimNode, partition: number): Promise<Uint8Array> {
  const entries: KeyDigest[] = [];
  for await (const o of node.store.scanPartition(partition)) entries.push({ bucket: o.bucket, key: o.key, digest: versionDigest(o.object) });
  return rootHash(buildTree(node.trees.options.shape, entries));
}

describe('anti-entropy on an in-process cluster', () => {
  test('writes stored on one replica only reach every primary through anti-entropy alone, with no read', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: Q, replicationFactor: 3, seed: 11, antiEntropyIntervalMs: 200 });
    await cluster.start();
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
    for (const key of keys) await put(cluster.nodes[0]!, key, 'v0');
    await cluster.advance(500);
    expect(await divergent(cluster, keys)).toEqual([]);

    // New versions on n1 only, new keys on n2 only, and a concurrent version on n3 of a key n1 also changed.
    for (const key of keys.slice(0, 20)) await writeOnlyTo(cluster.node('n1'), key, 'v1');
    const fresh = Array.from({ length: 10 }, (_, i) => `fresh${i}`);
    for (const key of fresh) await writeOnlyTo(cluster.node('n2'), key, 'new');
    await writeOnlyTo(cluster.node('n3'), 'k0', 'concurrent');
    const all = [...keys, ...fresh];
    expect((await divergent(cluster, all)).length).toBe(30);

    // Each node has 16 partitions to visit; 40 virtual seconds are about 200 exchanges per node.
    await cluster.advance(40_000);
    expect(await divergent(cluster, all)).toEqual([]);
    // Both concurrent versions of k0 survive as siblings: the repair merged, it did not overwrite.
    const k0 = await cluster.node('n2').store.read(partitionOf('b', 'k0', Q), 'b', 'k0');
    expect(k0!.siblings.map((s) => Buffer.from(s.value).toString()).sort()).toEqual(['concurrent', 'v1']);
    expect(sum(cluster, (n) => n.readRepairs)).toBe(0);
    expect(sum(cluster, (n) => n.antiEntropyCounts.keysRepaired)).toBeGreaterThanOrEqual(30);
    expect(sum(cluster, (n) => n.antiEntropyCounts.exchanges)).toBeGreaterThan(0);
    // Trees kept current incrementally equal trees rebuilt from storage, on every node.
    for (const node of cluster.nodes) {
      for (let p = 0; p < Q; p++) expect(Buffer.from(rootHash(await node.trees.tree(p)))).toEqual(Buffer.from(await rebuiltRoot(node, p)));
    }
    for (const node of cluster.nodes) await node.antiEntropy.stop();
    expect(cluster.errors).toEqual([]);
  });

  test('a node partitioned away during writes, whose hints are never delivered, catches up through anti-entropy', async () => {
    const cluster = new MemoryCluster({ nodes: 5, partitionCount: Q, replicationFactor: 3, seed: 5, antiEntropyIntervalMs: 200, hintDelivery: false });
    await cluster.start();
    const victim = cluster.node('n4');
    cluster.network.isolate(victim.peerUrl);
    await cluster.advance(15_000); // long enough for phi to convict
    const keys = Array.from({ length: 80 }, (_, i) => `p${i}`).filter((key) => primariesOf(cluster, key).includes('n4'));
    expect(keys.length).toBeGreaterThan(10);
    for (const key of keys) await put(cluster.node(primariesOf(cluster, key).find((id) => id !== 'n4')!), key, 'while-away');
    await cluster.advance(100);
    for (const key of keys) expect(await victim.store.read(partitionOf('b', key, Q), 'b', key)).toBeUndefined();

    cluster.network.heal();
    await cluster.advance(60_000);
    expect(await divergent(cluster, keys)).toEqual([]);
    expect(sum(cluster, (n) => n.readRepairs)).toBe(0);
    expect(sum(cluster, (n) => n.antiEntropyCounts.keysRepaired)).toBeGreaterThanOrEqual(keys.length);
    for (const node of cluster.nodes) await node.antiEntropy.stop();
  });

  test('one exchange repairs at most keysPerExchangeMax keys; later exchanges finish the job', async () => {
    const cluster = new MemoryCluster({ nodes: 2, partitionCount: 1, replicationFactor: 2, seed: 3, antiEntropyKeysPerExchangeMax: 3 });
    await cluster.start();
    const keys = Array.from({ length: 10 }, (_, i) => `t${i}`);
    for (const key of keys) await cluster.node('n1').store.update(0, 'b', key, () => update(EMPTY_OBJECT, {}, 'n1.direct', value('x'), options).object);
    const first = await cluster.node('n1').antiEntropy.exchangeWith(0, 'n2');
    expect(first.differingKeys).toBe(10);
    expect(first.keysRepaired).toBe(3);
    const reports = [];
    for (let i = 0; i < 5; i++) reports.push(await cluster.node('n1').antiEntropy.exchangeWith(0, 'n2'));
    expect(reports.map((r) => r.keysRepaired)).toEqual([3, 3, 1, 0, 0]);
    expect(reports[4]!.differingSegments).toBe(0);
  });

  test('syncPartition (before an old owner drops a partition): true only once every peer holds what this copy holds', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: 1, replicationFactor: 3, seed: 4, antiEntropyKeysPerExchangeMax: 4 });
    await cluster.start();
    const keys = Array.from({ length: 10 }, (_, i) => `s${i}`);
    for (const key of keys) await cluster.node('n1').store.update(0, 'b', key, () => update(EMPTY_OBJECT, {}, 'n1.direct', value('only-here'), options).object);
    cluster.network.isolate(cluster.node('n3').peerUrl);
    await cluster.advance(3000);
    // A peer that is down cannot be brought up to date: keep the copy.
    expect(await cluster.node('n1').antiEntropy.syncPartition(0, ['n2', 'n3'])).toBe(false);
    cluster.network.heal();
    await cluster.advance(3000);
    // Four keys per exchange, at most four exchanges per peer: 4 + 4 + 2 repaired, then one finds them in step.
    expect(await cluster.node('n1').antiEntropy.syncPartition(0, ['n2', 'n3'])).toBe(true);
    for (const id of ['n2', 'n3']) for (const key of keys) expect([id, key, (await cluster.node(id).store.read(0, 'b', key)) !== undefined]).toEqual([id, key, true]);
  });

  test('a tree built while writes to its partition go on equals a tree rebuilt afterwards', async () => {
    const cluster = new MemoryCluster({ nodes: 1, partitionCount: 1, replicationFactor: 1, seed: 9 });
    await cluster.start();
    const node = cluster.node('n1');
    const write = (key: string, v: string) => node.store.update(0, 'b', key, (c) => update(c ?? EMPTY_OBJECT, {}, 'n1.x', value(v), options).object);
    for (let i = 0; i < 300; i++) await write(`w${i}`, 'a');
    // The build scans 64 objects per page; writes land before, inside and after the scanned range.
    const building = node.trees.tree(0);
    const writes = Array.from({ length: 300 }, (_, i) => write(`w${(i * 37) % 400}`, `b${i}`));
    await Promise.all([building, ...writes]);
    expect(Buffer.from(rootHash(await node.trees.tree(0)))).toEqual(Buffer.from(await rebuiltRoot(node, 0)));
  });
});
