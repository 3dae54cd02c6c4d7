/**
 * Failures on real node processes with real RocksDB, N=3 R=2 W=2, on 3 and on 5 nodes: kill -9 of
 * a replica (sloppy quorum and hinted handoff), a stale replica healed by read repair, and
 * consistent reads with one and two primaries down.
 *
 * Replicas are inspected through their peer `read` method, a local read of one node's storage
 * that repairs nothing, so what a test sees on a replica is what the mechanism under test put
 * there and not a side effect of looking.
 */
import { LocalCluster, errorCode, getKey, putText, siblingTexts, valuesOf, waitFor, type RingView } from '../support/cluster';
import { killAllNodes } from '../support/nodeProcess';

const BUCKET = 'failures';
const TEST_TIMEOUT_MS = 120_000;

describe.each([3, 5])('a %i-node cluster with N=3 R=2 W=2', (size) => {
  let cluster: LocalCluster | undefined;
  let ring: RingView;
  /** A running node other than the ones named, to coordinate through. */
  const another = (...not: string[]): string => cluster!.running().find((n) => !not.includes(n.id))!.url;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ nodes: size });
    ring = await cluster.ring('n1');
  }, 60_000);

  // Each test starts from a whole cluster, even after an earlier one failed half-way.
  beforeEach(async () => {
    await cluster!.heal();
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
    await killAllNodes();
  });

  test('kill -9 of one replica: writes and reads still succeed', async () => {
    const c = cluster!;
    const victim = 'n2';
    const keys = LocalCluster.findKeys(ring, BUCKET, 'down', 10, (p) => p.includes(victim));
    await c.kill(victim);
    await c.waitSeenDown(victim);
    for (const [i, key] of keys.entries()) {
      expect((await putText(c.running()[i % (size - 1)]!.url, BUCKET, key, `v-${key}`)).status).toBe(204);
    }
    for (const [i, key] of keys.entries()) {
      const answer = await getKey(c.running()[(i + 1) % (size - 1)]!.url, BUCKET, key);
      expect({ key, status: answer.status, body: answer.body }).toEqual({ key, status: 200, body: `v-${key}` });
    }
    if (size === 3) {
      // No node is left to stand in, so W=all cannot be met.
      const all = await putText(another(), BUCKET, keys[0]!, 'needs-all', { query: 'w=all' });
      expect({ status: all.status, code: errorCode(all) }).toEqual({ status: 503, code: 'QUORUM_UNAVAILABLE' });
    }
  }, TEST_TIMEOUT_MS);

  if (size === 5) {
    test('the fallback holds hints; after a restart they are delivered and the replica has the data', async () => {
      const c = cluster!;
      const victim = 'n3';
      const keys = LocalCluster.findKeys(ring, BUCKET, 'hinted', 10, (p) => p.includes(victim));
      await c.kill(victim);
      await c.waitSeenDown(victim);
      // Counted over the nodes that stay up, so the victim's counter (reset by its restart) is out.
      const deliveredBefore = await c.metricTotal('dynamokv_hints_delivered_total');
      for (const [i, key] of keys.entries()) expect((await putText(c.running()[i % 4]!.url, BUCKET, key, `h-${key}`)).status).toBe(204);

      // Each key sits on its two live primaries and on exactly one stand-in, which holds a hint.
      for (const key of keys) {
        const primaries = LocalCluster.primaries(ring, BUCKET, key);
        const holders = await c.holders(BUCKET, key, ring.partitionCount);
        expect(holders.filter((id) => primaries.includes(id)).sort()).toEqual(primaries.filter((id) => id !== victim).sort());
        expect(holders.filter((id) => !primaries.includes(id))).toHaveLength(1);
      }
      expect(await waitFor('the hint backlog to count every hint', 10_000, async () => ((await c.hintBacklogTotal()) >= keys.length ? c.hintBacklogTotal() : undefined))).toBe(keys.length);

      await c.startNode(victim);
      await waitFor('hint backlog 0', 20_000, async () => ((await c.hintBacklogTotal()) === 0 ? true : undefined));
      expect((await c.metricTotal('dynamokv_hints_delivered_total')) - deliveredBefore).toBeGreaterThanOrEqual(keys.length);
      // No client read touched these keys since the restart: the data came by hinted handoff.
      for (const key of keys) {
        expect({ key, values: valuesOf(await c.readReplica(victim, BUCKET, key, ring.partitionCount)) }).toEqual({ key, values: [`h-${key}`] });
        // The stand-ins dropped their copies once the owner acknowledged: back to exactly N holders.
        expect({ key, holders: (await c.holders(BUCKET, key, ring.partitionCount)).sort() }).toEqual({ key, holders: LocalCluster.primaries(ring, BUCKET, key).sort() });
      }
    }, TEST_TIMEOUT_MS);
  }

  test('a stale replica is repaired by a read', async () => {
    const c = cluster!;
    const victim = 'n3';
    const key = LocalCluster.findKeys(ring, BUCKET, 'stale', 1, (p) => p.includes(victim))[0]!;
    const first = await putText(another(victim), BUCKET, key, 'old', { query: 'w=all' });
    expect(first.status).toBe(204);
    await c.kill(victim);
    await c.waitSeenDown(victim);
    expect((await putText(another(victim), BUCKET, key, 'new', { context: first.headers.get('x-dynamo-context')! })).status).toBe(204);
    // Only read repair may heal the victim: on 5 nodes the stand-in that holds the hint is
    // killed before the victim returns, so hinted handoff cannot deliver (3 nodes have none).
    const primaries = LocalCluster.primaries(ring, BUCKET, key);
    const standIns = (await c.holders(BUCKET, key, ring.partitionCount)).filter((id) => !primaries.includes(id));
    expect(standIns).toHaveLength(size === 5 ? 1 : 0);
    for (const id of standIns) await c.kill(id);
    await c.startNode(victim);
    await c.waitConverged();
    expect(valuesOf(await c.readReplica(victim, BUCKET, key, ring.partitionCount))).toEqual(['old']);

    const repairsBefore = await c.metricTotal('dynamokv_read_repairs_total');
    const read = await getKey(another(victim), BUCKET, key);
    expect({ status: read.status, body: read.body }).toEqual({ status: 200, body: 'new' });
    await waitFor('the victim to be repaired', 10_000, async () => (valuesOf(await c.readReplica(victim, BUCKET, key, ring.partitionCount)).join() === 'new' ? true : undefined));
    expect(await c.metricTotal('dynamokv_read_repairs_total')).toBeGreaterThan(repairsBefore);
  }, TEST_TIMEOUT_MS);

  test('consistent=true: the newest value with one primary down, 503 with two down', async () => {
    const c = cluster!;
    // n1 coordinates throughout, so the two primaries taken down are two others.
    const key = 'consistent';
    const primaries = LocalCluster.primaries(ring, BUCKET, key);
    const [a, b] = primaries.filter((id) => id !== 'n1') as [string, string];
    const first = await putText(c.node('n1').url, BUCKET, key, 'v1', { query: 'w=all' });
    expect(first.status).toBe(204);
    await c.kill(a);
    await c.waitSeenDown(a);
    expect((await putText(c.node('n1').url, BUCKET, key, 'v2', { context: first.headers.get('x-dynamo-context')! })).status).toBe(204);
    for (const node of c.running()) {
      const answer = await getKey(node.url, BUCKET, key, 'consistent=true');
      expect({ via: node.id, status: answer.status, body: answer.body }).toEqual({ via: node.id, status: 200, body: 'v2' });
    }

    await c.kill(b);
    await c.waitSeenDown(b);
    for (const node of c.running()) {
      const answer = await getKey(node.url, BUCKET, key, 'consistent=true');
      expect({ via: node.id, status: answer.status, code: errorCode(answer) }).toEqual({ via: node.id, status: 503, code: 'QUORUM_UNAVAILABLE' });
    }
    // Each of those refusals is counted by the node that coordinated it.
    expect(await c.metricTotal('dynamokv_quorum_failures_total')).toBeGreaterThanOrEqual(c.running().length);
    // A plain read may use the stand-in (sloppy quorum) on 5 nodes; 3 nodes have none.
    const sloppy = await getKey(c.node('n1').url, BUCKET, key);
    expect(sloppy.status).toBe(size === 5 ? 200 : 503);

    // Never stale: bring back `a`, which missed v2, and keep b down. On 5 nodes the stand-in is
    // stopped first so that hinted handoff cannot refresh `a` before the read.
    const standIns = (await c.holders(BUCKET, key, ring.partitionCount)).filter((id) => !primaries.includes(id));
    for (const id of standIns) await c.kill(id);
    await c.startNode(a);
    await c.waitConverged();
    expect(valuesOf(await c.readReplica(a, BUCKET, key, ring.partitionCount))).toEqual(['v1']);
    const fromStale = await getKey(c.node(a).url, BUCKET, key, 'consistent=true');
    expect({ status: fromStale.status, body: fromStale.status === 300 ? siblingTexts(fromStale) : fromStale.body }).toEqual({ status: 200, body: 'v2' });
  }, TEST_TIMEOUT_MS);
});
