/**
 * A request that cannot reach its quorum fails at once, and the replica calls it had already
 * sent still settle quietly: a call that fails later must not surface as an unhandled promise
 * rejection, which would end a real node's process (found by the simulator).
 */
import { MemoryCluster } from './memoryCluster';

const value = (v: string) => ({ value: Buffer.from(v), contentType: 'text/plain', lastModifiedMs: 1, deleted: false });

describe('a quorum that cannot be met', () => {
  test('fails at once, and the calls already sent settle without an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const cluster = new MemoryCluster({ nodes: 3, partitionCount: 8, replicationFactor: 3, seed: 3, hintDelivery: false });
      await cluster.start();
      // n3 is judged down; n2 is cut off too, but nobody has noticed yet.
      cluster.network.isolate(cluster.node('n3').peerUrl);
      await cluster.advance(10_000);
      expect(cluster.node('n1').membership.isUp('n3')).toBe(false);
      cluster.network.isolate(cluster.node('n2').peerUrl);
      expect(cluster.node('n1').membership.isUp('n2')).toBe(true);

      const n1 = cluster.node('n1').coordinator;
      // Two replicas are thought reachable and three are needed: both fail before any answer.
      await expect(n1.get({ bucket: 'b', key: 'k', read: { r: 3, pr: 0 }, consistent: false, conflictMode: 'siblings' })).rejects.toThrow(/not enough replicas|quorum/);
      await expect(n1.put({ bucket: 'b', key: 'k', value: value('v'), context: {}, write: { w: 3, dw: 0, pw: 0 }, conflictMode: 'siblings' })).rejects.toThrow(/replicas|quorum/);
      // Let the calls to n2 fail and every promise settle.
      await cluster.advance(2000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
