/**
 * Crash safety on real processes: kill -9 during heavy writes loses no write acknowledged as
 * durable.
 *
 * A 3-node cluster (N=3, anti-entropy off so nothing heals a replica behind the test's back)
 * takes writes from many concurrent writers, each write a new key with a known value. In the
 * middle of it every node is killed with SIGKILL at once; the nodes restart on the same data.
 * - dw=1 (w=2): every acknowledged write must be readable with its value (r=all merges all
 *   three replicas, so the one copy that was fsynced is enough).
 * - w=3, dw=3: one node is killed first (later writes cannot meet w=3 and are refused), then the
 *   other two. Every acknowledged write must be on all three replicas, each read alone through
 *   its peer port, which repairs nothing.
 * The writers count what was acknowledged; the test insists on enough of them to mean something.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { LocalCluster, valuesOf } from '../support/cluster';

const PARTITIONS = 16;
const WRITERS = 24;
const ACKED_MIN = 100;

let cluster: LocalCluster;

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3, partitions: PARTITIONS, replicaTimeoutMs: 2000, extraArgs: ['--anti-entropy-interval-ms', '0'] });
});
afterAll(async () => {
  await cluster?.destroy();
});

interface Load {
  readonly acked: Map<string, string>;
  stop(): Promise<void>;
}

/**
 * `WRITERS` closed loops, each writing new keys `<prefix>-<writer>-<n>` through the nodes in turn.
 * Only a 204 counts as acknowledged; failures (refused quorum, connections cut by the kill) do not.
 */
function startWriters(prefix: string, query: string): Load {
  const acked = new Map<string, string>();
  const pools = cluster.nodes.map((n) => new Pool(n.url, { connections: WRITERS }));
  let running = true;
  const writer = async (w: number) => {
    for (let n = 0; running; n++) {
      const key = `${prefix}-${w}-${n}`;
      const value = `value of ${key}`;
      try {
        const response = await pools[(w + n) % pools.length]!.request({
          method: 'PUT',
          path: `/v1/buckets/d/keys/${key}?${query}`,
          headers: { 'content-type': 'text/plain' },
          body: value,
          headersTimeout: 5000,
          bodyTimeout: 5000,
        });
        await response.body.dump();
        if (response.statusCode === 204) acked.set(key, value);
      } catch {
        // The node was killed under the request: not acknowledged.
        await sleep(20);
      }
    }
  };
  const loops = Array.from({ length: WRITERS }, (_, w) => writer(w));
  return {
    acked,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      await Promise.all(pools.map((p) => p.destroy()));
    },
  };
}

async function killAll(ids: readonly string[]): Promise<void> {
  await Promise.all(ids.map((id) => cluster.kill(id)));
}

async function restartAll(): Promise<void> {
  await cluster.startAll();
  await cluster.waitConverged(30_000);
}

test('dw=1: every acknowledged write survives kill -9 of every node', async () => {
  const load = startWriters('dw1', 'w=2&dw=1');
  await sleep(2500);
  const ackedBeforeKill = load.acked.size;
  await killAll(cluster.ids);
  await load.stop();
  expect(ackedBeforeKill).toBeGreaterThanOrEqual(ACKED_MIN);
  await restartAll();
  const lost: string[] = [];
  for (const [key, value] of load.acked) {
    const answer = await fetch(`${cluster.nodes[0]!.url}/v1/buckets/d/keys/${key}?r=all`);
    const body = await answer.text();
    if (answer.status !== 200 || body !== value) lost.push(`${key}: ${answer.status} ${body.slice(0, 80)}`);
  }
  expect(lost).toEqual([]);
});

test('w=3 dw=3: every acknowledged write is on all three replicas after kill -9 of one node, then the others', async () => {
  const load = startWriters('dw3', 'w=3&dw=3');
  await sleep(2000);
  await cluster.kill('n3');
  await sleep(500);
  await killAll(['n1', 'n2']);
  await load.stop();
  expect(load.acked.size).toBeGreaterThanOrEqual(ACKED_MIN);
  await restartAll();
  const missing: string[] = [];
  for (const [key, value] of load.acked) {
    for (const id of cluster.ids) {
      const held = valuesOf(await cluster.readReplica(id, 'd', key, PARTITIONS));
      if (held.length !== 1 || held[0] !== value) missing.push(`${key} on ${id}: ${JSON.stringify(held)}`);
    }
  }
  expect(missing).toEqual([]);
});
