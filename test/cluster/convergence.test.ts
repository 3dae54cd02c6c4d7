/**
 * Convergence on real node processes with real RocksDB, N=3 R=2 W=2, on 3 and on 5 nodes:
 * concurrent writers through different coordinators become siblings that a put with the returned
 * context resolves, and gossip brings a restarted node back to the ring everyone else holds.
 */
import { LocalCluster, getKey, http, putText, siblingTexts, waitFor } from '../support/cluster';
import { killAllNodes } from '../support/nodeProcess';

const BUCKET = 'convergence';
const TEST_TIMEOUT_MS = 120_000;

describe.each([3, 5])('a %i-node cluster with N=3 R=2 W=2', (size) => {
  let cluster: LocalCluster | undefined;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ nodes: size });
  }, 60_000);

  beforeEach(async () => {
    await cluster!.heal();
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
    await killAllNodes();
  });

  test('concurrent writers through different coordinators produce siblings; a put with the context resolves them', async () => {
    const c = cluster!;
    const ring = await c.ring('n1');
    // On 5 nodes take a key that n1 does not own, so one of the writes is also forwarded.
    const key = size === 5 ? LocalCluster.findKeys(ring, BUCKET, 'both', 1, (p) => !p.includes('n1'))[0]! : 'both';
    const [viaFirst, viaSecond] = [c.node('n1'), c.node(`n${size}`)];
    const writes = await Promise.all([putText(viaFirst.url, BUCKET, key, 'from-n1'), putText(viaSecond.url, BUCKET, key, `from-n${size}`)]);
    expect(writes.map((w) => w.status)).toEqual([204, 204]);

    for (const node of c.nodes) {
      const read = await getKey(node.url, BUCKET, key);
      expect({ via: node.id, status: read.status, values: siblingTexts(read) }).toEqual({ via: node.id, status: 300, values: ['from-n1', `from-n${size}`] });
    }
    const read = await getKey(c.node('n2').url, BUCKET, key);
    const context = read.headers.get('x-dynamo-context');
    // A context token is base64url and never empty.
    expect(context).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(JSON.parse(read.body).context).toBe(context);

    expect((await putText(c.node('n3').url, BUCKET, key, 'resolved', { context: context! })).status).toBe(204);
    for (const node of c.nodes) {
      const after = await getKey(node.url, BUCKET, key);
      expect({ via: node.id, status: after.status, body: after.body }).toEqual({ via: node.id, status: 200, body: 'resolved' });
    }
  }, TEST_TIMEOUT_MS);

  test('gossip converges after a restart: the restarted node learns the ring change it missed', async () => {
    const c = cluster!;
    const restarted = 'n2';
    const versionBefore = (await c.ring('n1')).version;
    await c.kill(restarted);
    await c.waitSeenDown(restarted);
    // A ring change while it is down (bucket properties travel with the ring).
    const props = await http(c.node('n3').url, 'PUT', `/v1/buckets/${BUCKET}-lww/props`, { body: JSON.stringify({ conflictMode: 'lww' }), headers: { 'content-type': 'application/json' } });
    expect(props.status).toBe(200);
    await waitFor('the change to reach the running nodes', 10_000, async () => {
      const versions = await Promise.all(c.running().map(async (n) => (await c.ring(n.id)).version));
      return versions.every((v) => v > versionBefore) ? true : undefined;
    });

    await c.startNode(restarted);
    const converged = await c.waitConverged(15_000);
    expect(converged.version).toBeGreaterThan(versionBefore);
    for (const node of c.nodes) {
      const ring = await c.ring(node.id);
      expect({ via: node.id, version: ring.version, up: ring.members.filter((m) => m.up).length }).toEqual({ via: node.id, version: converged.version, up: size });
    }
    const seen = await http(c.node(restarted).url, 'GET', `/v1/buckets/${BUCKET}-lww/props`);
    expect(JSON.parse(seen.body)).toEqual({ bucket: `${BUCKET}-lww`, props: { conflictMode: 'lww' } });
  }, TEST_TIMEOUT_MS);
});
