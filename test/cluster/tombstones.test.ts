/**
 * Tombstone reaping on real node processes with real RocksDB (issue 4, "the delete-while-down
 * case"): keys are deleted while one replica is killed with -9, and it stays down longer than
 * the (short) grace period. Then:
 * - while it is down, the other replicas keep every tombstone (nothing is reaped with a member
 *   down, however old the tombstone);
 * - it comes back holding the old values; reads through any node answer 404 throughout;
 * - anti-entropy gives it the tombstones, and then every replica reaps them;
 * - from the moment no replica holds a live copy of a deleted key, none ever does again.
 * Replicas are inspected with the peer `read` method, a local read that repairs nothing.
 */
import { isTombstoned } from '../../node/src/core/dvv';
import { LocalCluster, getKey, http, putText, valuesOf, waitFor } from '../support/cluster';
import { killAllNodes } from '../support/nodeProcess';

const BUCKET = 'tomb';
const Q = 16;
const GRACE_MS = 3000;
const IDS = ['n1', 'n2', 'n3'];

describe('tombstones on real nodes', () => {
  let cluster: LocalCluster | undefined;

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      nodes: 3,
      partitions: Q,
      extraArgs: ['--tombstone-grace-ms', String(GRACE_MS), '--tombstone-reap-interval-ms', '300', '--anti-entropy-interval-ms', '300'],
    });
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
    await killAllNodes();
  });

  /** Per node: 'value' (a live sibling), 'tombstone' or 'none' for the key. */
  async function copies(key: string): Promise<Record<string, string>> {
    const found: Record<string, string> = {};
    for (const id of IDS) {
      const object = await cluster!.readReplica(id, BUCKET, key, Q);
      found[id] = object === undefined ? 'none' : valuesOf(object).length > 0 ? 'value' : isTombstoned(object) ? 'tombstone' : 'other';
    }
    return found;
  }

  test('a delete while a replica is down (kill -9): never reaped while it is away, then reaped everywhere, and the old value never comes back', async () => {
    const c = cluster!;
    const deleted = Array.from({ length: 30 }, (_, i) => `gone-${i}`);
    const kept = Array.from({ length: 10 }, (_, i) => `kept-${i}`);
    for (const key of [...deleted, ...kept]) expect((await putText(c.node('n1').url, BUCKET, key, `old-${key}`, { query: 'w=all' })).status).toBe(204);

    await c.kill('n3');
    await c.waitSeenDown('n3');
    for (const [i, key] of deleted.entries()) {
      const via = c.node(i % 2 === 0 ? 'n1' : 'n2').url;
      const context = (await getKey(via, BUCKET, key)).headers.get('x-dynamo-context') ?? undefined;
      const answer = await http(via, 'DELETE', `/v1/buckets/${BUCKET}/keys/${key}`, context === undefined ? {} : { headers: { 'x-dynamo-context': context } });
      expect(answer.status).toBe(204);
    }
    // Well past the grace period, with reaping rounds every 300 ms: the tombstones stay.
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS * 2));
    for (const key of deleted) {
      for (const id of ['n1', 'n2']) expect([key, id, isTombstoned((await c.readReplica(id, BUCKET, key, Q))!)]).toEqual([key, id, true]);
    }
    expect(await c.metricTotal('dynamokv_tombstones_reaped_total')).toBe(0);
    expect(await c.metricTotal('dynamokv_tombstones_pending')).toBe(deleted.length * 2);

    // n3 returns with the old values. Reads through any node answer 404 right away: each read
    // quorum includes a node holding the tombstone, which supersedes the old value.
    await c.startNode('n3');
    await c.waitConverged();
    expect(valuesOf(await c.readReplica('n3', BUCKET, deleted[0]!, Q))).toEqual([`old-${deleted[0]}`]);
    for (const key of deleted.slice(0, 10)) expect((await getKey(c.node('n3').url, BUCKET, key)).status).toBe(404);

    // From the moment a key has no live copy anywhere it must never get one again; all copies go.
    const settled = new Set<string>();
    await waitFor('every tombstone reaped on every replica', 60_000, async () => {
      let remaining = 0;
      for (const key of deleted) {
        const now = await copies(key);
        const live = Object.values(now).includes('value');
        if (settled.has(key)) expect({ key, now, live }).toEqual({ key, now, live: false });
        else if (!live) settled.add(key);
        remaining += Object.values(now).filter((v) => v !== 'none').length;
      }
      return remaining === 0 ? true : undefined;
    });
    // Watch a little longer: anti-entropy and the reaper keep running; nothing comes back.
    for (let round = 0; round < 5; round++) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      for (const key of deleted) expect([key, await copies(key)]).toEqual([key, { n1: 'none', n2: 'none', n3: 'none' }]);
    }
    for (const id of IDS) for (const key of deleted) expect([id, key, (await getKey(c.node(id).url, BUCKET, key)).status]).toEqual([id, key, 404]);
    for (const key of kept) expect((await getKey(c.node('n3').url, BUCKET, key)).body).toBe(`old-${key}`);
    expect(await c.metricTotal('dynamokv_tombstones_reaped_total')).toBeGreaterThanOrEqual(deleted.length * 3);
    await waitFor('no tombstone pending on any node', 10_000, async () => ((await c.metricTotal('dynamokv_tombstones_pending')) === 0 ? true : undefined));
  }, 150_000);
});
