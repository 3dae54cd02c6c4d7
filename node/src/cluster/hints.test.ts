/**
 * Hint delivery on an in-process cluster (production code, in-memory storage and network,
 * virtual time): hinted writes reach their owner when it is back, and when the owner left the
 * ring instead, they reach the key's current primaries rather than staying stranded.
 */
import { partitionOf, preferenceList } from '../core/partition';
import { activeMembers } from '../core/ring';
import { allHintsRange } from '../storage/keys';
import { MemoryCluster } from './memoryCluster';

const Q = 16;
const value = (v: string) => ({ value: Buffer.from(v), contentType: 'text/plain', lastModifiedMs: 1, deleted: false });

async function hintsLeft(cluster: MemoryCluster): Promise<number> {
  let total = 0;
  for (const node of cluster.nodes) total += await node.engine.count(allHintsRange());
  return total;
}

describe('hint delivery', () => {
  test('hints for a member that left go to the current primaries of their keys', async () => {
    const cluster = new MemoryCluster({ nodes: 4, partitionCount: Q, replicationFactor: 3, seed: 5 });
    await cluster.start();
    const ring = cluster.node('n1').membership.ring();
    const ids = activeMembers(ring).map((m) => m.id);
    // Keys n4 is a primary of: while it is cut off, a stand-in takes its copy with a hint.
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`).filter((k) => preferenceList(ring.plan, partitionOf('b', k, Q), ids).primaries.includes('n4')).slice(0, 20);
    expect(keys.length).toBeGreaterThan(5);
    cluster.network.isolate(cluster.node('n4').peerUrl);
    await cluster.advance(5000);
    for (const key of keys) {
      await cluster.node('n1').coordinator.put({ bucket: 'b', key, value: value(`v-${key}`), context: {}, write: { w: 3, dw: 0, pw: 0 }, conflictMode: 'siblings' });
    }
    expect(await hintsLeft(cluster)).toBeGreaterThan(0);

    // n4 never comes back: it is removed from the ring, and its partitions get new primaries.
    await cluster.node('n1').membership.leave('n4');
    await cluster.advance(30_000);
    expect(await hintsLeft(cluster)).toBe(0);
    const after = cluster.node('n1').membership.ring();
    const members = activeMembers(after).map((m) => m.id);
    for (const key of keys) {
      const partition = partitionOf('b', key, Q);
      for (const owner of preferenceList(after.plan, partition, members).primaries) {
        const copy = await cluster.node(owner).store.read(partition, 'b', key);
        expect({ key, owner, value: copy === undefined ? undefined : Buffer.from(copy.siblings[0]!.value).toString() }).toEqual({ key, owner, value: `v-${key}` });
      }
    }
  }, 60_000);

  test('a joining node that stood in for a down primary keeps its copy when it delivers the hint before the join commits', async () => {
    // A slow stream keeps the join pending while the hint is delivered.
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: Q, replicationFactor: 3, seed: 9, handoff: true, handoffBytesPerSecondMax: 500, handoffBatchKeysMax: 1 });
    await cluster.start();
    for (let i = 0; i < 40; i++) await cluster.nodes[i % 3]!.coordinator.put({ bucket: 'b', key: `pre${i}`, value: value('x'.repeat(200)), context: {}, write: { w: 2, dw: 0, pw: 0 }, conflictMode: 'siblings' });
    const n4 = await cluster.addNode('n4');
    const ring = n4.membership.ring();
    expect(ring.pending).toBeDefined();
    // A key n4 will own once the join commits; one of its current primaries (not the claimant) is cut off.
    const key = Array.from({ length: 400 }, (_, i) => `j${i}`).find((k) => {
      const partition = partitionOf('b', k, Q);
      return ring.pending!.plan.owners[partition]!.includes('n4') && ring.plan.owners[partition]!.some((id) => id !== 'n1');
    })!;
    const partition = partitionOf('b', key, Q);
    const down = ring.plan.owners[partition]!.find((id) => id !== 'n1')!;
    cluster.network.isolate(cluster.node(down).peerUrl);
    await cluster.advance(3000);
    await cluster.node('n1').coordinator.put({ bucket: 'b', key, value: value('new'), context: {}, write: { w: 2, dw: 0, pw: 0 }, conflictMode: 'siblings' });
    expect(await n4.engine.count(allHintsRange())).toBe(1);

    cluster.network.heal();
    await cluster.advance(5000);
    expect(await n4.engine.count(allHintsRange())).toBe(0);
    expect(n4.membership.ring().pending).toBeDefined();
    const copy = await n4.store.read(partition, 'b', key);
    expect(copy === undefined ? undefined : Buffer.from(copy.siblings[0]!.value).toString()).toBe('new');
  }, 60_000);

  test('a hint for a node that lost the partition to a join while the hint waited goes to the current primaries, not to that node', async () => {
    // No delivery loop: hints wait until the join has committed, then rounds run by hand. No sync
    // before streaming either, so the hint is the only way the write can travel here.
    const cluster = new MemoryCluster({ nodes: 4, partitionCount: Q, replicationFactor: 3, seed: 11, handoff: true, hintDelivery: false, syncBeforeStream: false });
    await cluster.start();
    const before = cluster.node('n1').membership.ring();
    const ids = activeMembers(before).map((m) => m.id);
    const keys = Array.from({ length: 400 }, (_, i) => `m${i}`).filter((k) => preferenceList(before.plan, partitionOf('b', k, Q), ids).primaries.includes('n4'));
    cluster.network.isolate(cluster.node('n4').peerUrl);
    await cluster.advance(5000);
    for (const key of keys) await cluster.node('n1').coordinator.put({ bucket: 'b', key, value: value(`v-${key}`), context: {}, write: { w: 2, dw: 0, pw: 0 }, conflictMode: 'siblings' });
    expect(await hintsLeft(cluster)).toBe(keys.length);
    cluster.network.heal();
    await cluster.advance(3000);

    await cluster.addNode('n5');
    expect(await cluster.untilNoChangePending(60_000)).toBe(true);
    const after = cluster.node('n1').membership.ring();
    const members = activeMembers(after).map((m) => m.id);
    const moved = keys.filter((k) => !preferenceList(after.plan, partitionOf('b', k, Q), members).primaries.includes('n4'));
    expect(moved.length).toBeGreaterThan(0);

    // A round delivers at most a batch per target.
    for (let round = 0; round < 10 && (await hintsLeft(cluster)) > 0; round++) for (const node of cluster.nodes) await node.hints.round();
    expect(await hintsLeft(cluster)).toBe(0);
    for (const key of moved) {
      const partition = partitionOf('b', key, Q);
      // n4 was cut off during the write and no longer owns the key: the hint did not go there.
      expect({ key, n4: await cluster.node('n4').store.read(partition, 'b', key) }).toEqual({ key, n4: undefined });
      for (const owner of preferenceList(after.plan, partition, members).primaries) {
        const copy = await cluster.node(owner).store.read(partition, 'b', key);
        expect({ key, owner, value: copy === undefined ? undefined : Buffer.from(copy.siblings[0]!.value).toString() }).toEqual({ key, owner, value: `v-${key}` });
      }
    }
  }, 60_000);
});
