/**
 * The coordinator, membership and hinted handoff on an in-process cluster (production code,
 * in-memory storage and network, virtual time). Each test names the Dynamo behaviour it proves.
 */
import { liveSiblings } from '../core/dvv';
import { partitionOf, preferenceList } from '../core/partition';
import { activeMembers } from '../core/ring';
import type { VersionedObject } from '../core/version';
import { MemoryCluster, type SimNode } from './memoryCluster';

const text = (o: VersionedObject | undefined) => (o === undefined ? [] : liveSiblings(o).map((s) => Buffer.from(s.value).toString()).sort());
const value = (v: string) => ({ value: Buffer.from(v), contentType: 'text/plain', lastModifiedMs: 1, deleted: false });
const quorum = { w: 2, dw: 0, pw: 0 };
const readQuorum = { r: 2, pr: 0 };

function primariesOf(cluster: MemoryCluster, bucket: string, key: string): string[] {
  const ring = cluster.nodes[0]!.membership.ring();
  return [...preferenceList(ring.plan, partitionOf(bucket, key, ring.partitionCount), activeMembers(ring).map((m) => m.id)).primaries];
}

async function put(node: SimNode, key: string, v: string, context = {}) {
  return node.coordinator.put({ bucket: 'b', key, value: value(v), context, write: quorum, conflictMode: 'siblings' });
}
async function get(node: SimNode, key: string, consistent = false) {
  return node.coordinator.get({ bucket: 'b', key, read: readQuorum, consistent, conflictMode: 'siblings' });
}

async function storedOn(cluster: MemoryCluster, key: string): Promise<string[]> {
  const ring = cluster.nodes[0]!.membership.ring();
  const partition = partitionOf('b', key, ring.partitionCount);
  const holders: string[] = [];
  for (const node of cluster.nodes) if ((await node.store.read(partition, 'b', key)) !== undefined) holders.push(node.id);
  return holders.sort();
}

describe('coordinator on an in-process cluster', () => {
  test('every key is stored on exactly its N preference-list nodes (3 and 5 nodes)', async () => {
    for (const size of [3, 5]) {
      const cluster = new MemoryCluster({ nodes: size, partitionCount: 16, replicationFactor: 3, seed: size });
      await cluster.start();
      for (let i = 0; i < 30; i++) await put(cluster.nodes[i % size]!, `k${i}`, `v${i}`);
      await cluster.advance(100);
      for (let i = 0; i < 30; i++) expect(await storedOn(cluster, `k${i}`)).toEqual(primariesOf(cluster, 'b', `k${i}`).sort());
      expect(cluster.errors).toEqual([]);
    }
  });

  test('a down primary is replaced by a fallback holding a hint, delivered when it returns', async () => {
    const cluster = new MemoryCluster({ nodes: 5, partitionCount: 16, replicationFactor: 3, seed: 7 });
    await cluster.start();
    const [first, victim] = primariesOf(cluster, 'b', 'hinted');
    const victimNode = cluster.node(victim!);
    cluster.network.isolate(victimNode.peerUrl);
    await cluster.advance(15000); // long enough for phi to convict
    const coordinator = cluster.node(first!);
    await put(coordinator, 'hinted', 'v1');
    await cluster.advance(100);
    const holders = await storedOn(cluster, 'hinted');
    expect(holders).toHaveLength(3);
    expect(holders).not.toContain(victim);
    await cluster.advance(1500);
    expect(cluster.nodes.reduce((sum, n) => sum + n.hints.backlog(), 0)).toBe(1);
    cluster.network.heal();
    await cluster.advance(10000);
    expect(cluster.nodes.reduce((sum, n) => sum + n.hints.backlog(), 0)).toBe(0);
    // The owner has the data and the fallback dropped its copy: exactly the N primaries hold it.
    expect(await storedOn(cluster, 'hinted')).toEqual(primariesOf(cluster, 'b', 'hinted').sort());
    expect(text(await victimNode.store.read(partitionOf('b', 'hinted', 16), 'b', 'hinted'))).toEqual(['v1']);
  });

  test('a stale replica is repaired by a read', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: 16, replicationFactor: 3, seed: 3 });
    await cluster.start();
    await put(cluster.nodes[0]!, 'rr', 'old');
    await cluster.advance(100);
    const stale = cluster.nodes[2]!;
    cluster.network.isolate(stale.peerUrl);
    const current = await get(cluster.nodes[0]!, 'rr');
    await put(cluster.nodes[0]!, 'rr', 'new', current!.context);
    cluster.network.heal();
    expect(text(await stale.store.read(partitionOf('b', 'rr', 16), 'b', 'rr'))).toEqual(['old']);
    expect(text(await get(cluster.nodes[1]!, 'rr'))).toEqual(['new']);
    await cluster.advance(100);
    expect(text(await stale.store.read(partitionOf('b', 'rr', 16), 'b', 'rr'))).toEqual(['new']);
    expect(cluster.nodes.reduce((sum, n) => sum + n.readRepairs, 0)).toBeGreaterThanOrEqual(1);
  });

  test('consistent reads: 2 of 3 primaries down -> QUORUM_UNAVAILABLE; 1 down -> the newest value', async () => {
    const cluster = new MemoryCluster({ nodes: 5, partitionCount: 16, replicationFactor: 3, seed: 11 });
    await cluster.start();
    const [a, b, c] = primariesOf(cluster, 'b', 'strong');
    await put(cluster.node(a!), 'strong', 'v1');
    const v1 = await get(cluster.node(a!), 'strong');
    await put(cluster.node(a!), 'strong', 'v2', v1!.context);
    cluster.network.isolate(cluster.node(c!).peerUrl);
    await cluster.advance(15000);
    expect(text(await get(cluster.node(a!), 'strong', true))).toEqual(['v2']);
    cluster.network.isolate(cluster.node(b!).peerUrl);
    await cluster.advance(15000);
    await expect(get(cluster.node(a!), 'strong', true)).rejects.toMatchObject({ code: 'QUORUM_UNAVAILABLE' });
    // A sloppy read still answers from fallbacks and the live primary.
    expect(await get(cluster.node(a!), 'strong')).toBeDefined();
  });

  test('concurrent writes through different coordinators become siblings; a put with the context resolves them', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: 16, replicationFactor: 3, seed: 5 });
    await cluster.start();
    await Promise.all([put(cluster.nodes[0]!, 'cart', 'milk'), put(cluster.nodes[1]!, 'cart', 'eggs')]);
    const both = await get(cluster.nodes[2]!, 'cart');
    expect(text(both)).toEqual(['eggs', 'milk']);
    await put(cluster.nodes[2]!, 'cart', 'eggs+milk', both!.context);
    expect(text(await get(cluster.nodes[0]!, 'cart'))).toEqual(['eggs+milk']);
  });

  test('a write forwarded from a non-replica is stamped by a replica', async () => {
    const cluster = new MemoryCluster({ nodes: 5, partitionCount: 16, replicationFactor: 3, seed: 13 });
    await cluster.start();
    const primaries = primariesOf(cluster, 'b', 'fwd');
    const outsider = cluster.nodes.find((n) => !primaries.includes(n.id))!;
    const object = await put(outsider, 'fwd', 'x');
    for (const sibling of object.siblings) expect(primaries).toContain(sibling.dot.node.split('.')[0]);
  });

  test('a write whose quorum cannot be met is refused before anything is stored', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: 16, replicationFactor: 3, seed: 17 });
    await cluster.start();
    const [a, b] = primariesOf(cluster, 'b', 'doomed');
    cluster.network.isolate(cluster.node(b!).peerUrl);
    await cluster.advance(15000);
    const write = cluster.node(a!).coordinator.put({ bucket: 'b', key: 'doomed', value: value('x'), context: {}, write: { w: 3, dw: 0, pw: 0 }, conflictMode: 'siblings' });
    await expect(write).rejects.toMatchObject({ code: 'QUORUM_UNAVAILABLE' });
    expect(await storedOn(cluster, 'doomed')).toEqual([]);
  });

  test('a node configured with another N is refused by the claimant and not added to the ring', async () => {
    const cluster = new MemoryCluster({ nodes: 2, partitionCount: 16, replicationFactor: 3, seed: 19 });
    await cluster.start();
    const claimant = cluster.nodes[0]!;
    await expect(claimant.membership.handleJoin({ id: 'odd', clientUrl: 'http://odd', peerUrl: 'http://odd.peer' }, { partitionCount: 16, replicationFactor: 2 })).rejects.toMatchObject({
      code: 'MEMBERSHIP_CONFLICT',
    });
    expect(claimant.membership.ring().members.map((m) => m.id)).toEqual(['n1', 'n2']);
  });
});
