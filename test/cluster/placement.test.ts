/**
 * Placement, on real node processes with real RocksDB (N=3, R=2, W=2) on 3 and on 5 nodes:
 * every key is stored on exactly the N primaries its preference list names, and nowhere else.
 *
 * How: write keys through every node in turn (so non-replicas forward), wait until each primary
 * reports the key through its peer `read` (a local read that repairs nothing), then stop every
 * node and open each data directory with the node's own storage code. The set of keys a node
 * holds must equal the set of keys whose partition it owns in GET /v1/ring, with no hints left.
 * The nodes are then restarted and every key is read back through the client API.
 */
import { LocalCluster, http, valuesOf, waitFor } from '../support/cluster';
import { killAllNodes } from '../support/nodeProcess';

const BUCKET = 'placement';
const KEYS = Array.from({ length: 30 }, (_, i) => `key-${i}`);

describe.each([3, 5])('a %i-node cluster with N=3', (size) => {
  let cluster: LocalCluster | undefined;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ nodes: size });
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
    await killAllNodes();
  });

  test('each key is stored on exactly its N preference-list nodes', async () => {
    const c = cluster!;
    const ring = await c.ring('n1');
    for (const [i, key] of KEYS.entries()) {
      const coordinator = c.nodes[i % size]!;
      const answer = await http(coordinator.url, 'PUT', `/v1/buckets/${BUCKET}/keys/${key}`, { body: `value-${i}`, headers: { 'content-type': 'text/plain' } });
      expect(answer.status).toBe(204);
    }
    // W=2 answers before the third copy lands; wait (bounded) until every primary has it.
    await waitFor('every primary to hold its keys', 15_000, async () => {
      for (const [i, key] of KEYS.entries()) {
        for (const id of LocalCluster.primaries(ring, BUCKET, key)) {
          if (valuesOf(await c.readReplica(id, BUCKET, key, ring.partitionCount)).join() !== `value-${i}`) return undefined;
        }
      }
      return true;
    });

    await c.stopAll();
    for (const id of c.ids) {
      const stored = await c.storedData(id);
      const held = [...stored.objects.keys()].filter((k) => k.startsWith(`${BUCKET}/`)).map((k) => k.slice(BUCKET.length + 1)).sort();
      const owned = KEYS.filter((key) => LocalCluster.primaries(ring, BUCKET, key).includes(id)).sort();
      expect({ id, held }).toEqual({ id, held: owned });
      expect(stored.hints).toEqual([]);
    }
    // Each key was counted on exactly N nodes (the plan's owner lists have N distinct members).
    for (const key of KEYS) expect(new Set(LocalCluster.primaries(ring, BUCKET, key)).size).toBe(3);

    await c.startAll();
    await c.waitConverged();
    for (const [i, key] of KEYS.entries()) {
      const answer = await http(c.nodes[(i + 1) % size]!.url, 'GET', `/v1/buckets/${BUCKET}/keys/${key}`);
      expect({ key, status: answer.status, body: answer.body }).toEqual({ key, status: 200, body: `value-${i}` });
    }
  }, 120_000);
});
