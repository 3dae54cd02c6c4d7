/**
 * Corrupt stored values on real processes: detected by the checksum, counted, logged, never
 * served, and repaired from the other replicas by read repair and by anti-entropy.
 *
 * A 3-node cluster (N=3, anti-entropy off at first) stores keys on every node. With n3 stopped,
 * the test opens n3's RocksDB directly and damages the stored bytes of some keys: a flipped byte
 * in half of them, a truncated value in the other half. Then:
 * - n3's own copies are never served: its peer read answers STORAGE_CORRUPT;
 * - reads through n3 with r=1 answer the right value (the corrupt local copy counts as not
 *   answering), and read repair overwrites n3's copies; dynamokv_corrupt_objects_total counts
 *   the detections and the log names the keys;
 * - a write through n3 over a corrupt copy first repairs it from the replicas, so the old value
 *   survives beside the new one (no context: they are concurrent);
 * - keys nobody reads are repaired by anti-entropy once n3 restarts with exchanges on, with no
 *   read repair anywhere.
 */
import { RocksDbEngine } from '../../node/src/storage/rocksdb';
import { dataKey } from '../../node/src/storage/keys';
import { partitionOf } from '../../node/src/core/partition';
import { NodeProcess, killAllNodes } from '../support/nodeProcess';
import { LocalCluster, getKey, putText, siblingTexts, valuesOf, waitFor } from '../support/cluster';
import { metricValue } from './support';

const PARTITIONS = 16;
const BUCKET = 'c';
const READ_KEYS = Array.from({ length: 10 }, (_, i) => `read-${i}`);
const AE_KEYS = Array.from({ length: 10 }, (_, i) => `ae-${i}`);
const WRITE_KEY = 'write-0';
const valueOf = (key: string) => `the value of ${key}`;

let cluster: LocalCluster;
let aeNode: NodeProcess | undefined;

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3, partitions: PARTITIONS, extraArgs: ['--anti-entropy-interval-ms', '0'] });
  for (const key of [...READ_KEYS, ...AE_KEYS, WRITE_KEY]) {
    expect((await putText(cluster.nodes[0]!.url, BUCKET, key, valueOf(key), { query: 'w=all' })).status).toBe(204);
  }
  await cluster.stop('n3');
  await damage(cluster.node('n3').dataDir, [...READ_KEYS, ...AE_KEYS, WRITE_KEY]);
  await cluster.startNode('n3');
  await cluster.waitConverged();
});
afterAll(async () => {
  await aeNode?.stop('SIGKILL');
  await cluster?.destroy();
  await killAllNodes();
});

/** Damages the stored bytes of the keys: even positions get a flipped byte, odd ones are truncated. */
async function damage(dataDir: string, keys: readonly string[]): Promise<void> {
  const engine = new RocksDbEngine({ path: dataDir });
  await engine.open();
  try {
    for (const [i, key] of keys.entries()) {
      const raw = dataKey(partitionOf(BUCKET, key, PARTITIONS), BUCKET, key);
      const stored = await engine.get(raw);
      if (stored === undefined) throw new Error(`n3 holds no copy of ${key}`);
      const bytes = Uint8Array.from(stored);
      const damaged = i % 2 === 0 ? flip(bytes, Math.floor(bytes.length / 2)) : bytes.subarray(0, bytes.length - 7);
      await engine.put(raw, damaged, { sync: true });
    }
  } finally {
    await engine.close();
  }
}

function flip(bytes: Uint8Array, at: number): Uint8Array {
  bytes[at] = bytes[at]! ^ 0x20;
  return bytes;
}

async function metric(url: string, name: string): Promise<number> {
  return metricValue(await (await fetch(`${url}/metrics`)).text(), name);
}

test('the corrupt copies are never served: the node\'s own peer read answers STORAGE_CORRUPT', async () => {
  for (const key of [...READ_KEYS, ...AE_KEYS]) {
    await expect(cluster.readReplica('n3', BUCKET, key, PARTITIONS)).rejects.toMatchObject({ code: 'STORAGE_CORRUPT' });
  }
});

test('reads through the damaged node answer the right value, count and log the corruption, and read repair overwrites it', async () => {
  const n3 = cluster.node('n3');
  for (const key of READ_KEYS) {
    const answer = await getKey(n3.url, BUCKET, key, 'r=1');
    expect([key, answer.status, answer.body]).toEqual([key, 200, valueOf(key)]);
  }
  await waitFor('read repair of n3', 10_000, async () => {
    for (const key of READ_KEYS) if (valuesOf(await cluster.readReplica('n3', BUCKET, key, PARTITIONS).catch(() => undefined))[0] !== valueOf(key)) return undefined;
    return true;
  });
  expect(await metric(n3.url, 'dynamokv_corrupt_objects_total')).toBeGreaterThanOrEqual(READ_KEYS.length);
  expect(await metric(n3.url, 'dynamokv_read_repairs_total')).toBeGreaterThanOrEqual(READ_KEYS.length);
  const logged = cluster.logs('n3').split('\n').filter((line) => line.includes('corrupt stored object'));
  for (const key of READ_KEYS) expect([key, logged.some((line) => line.includes(`"key":"${key}"`))]).toEqual([key, true]);
  // The checksum caught both kinds of damage.
  expect(logged.some((line) => line.includes('checksum mismatch'))).toBe(true);
});

test('a write through the damaged node repairs its copy first, so the old value is kept beside the new one', async () => {
  const n3 = cluster.node('n3');
  expect((await putText(n3.url, BUCKET, WRITE_KEY, 'a blind write', { query: 'w=1' })).status).toBe(204);
  const read = await getKey(n3.url, BUCKET, WRITE_KEY, 'r=all');
  expect(read.status).toBe(300);
  expect(siblingTexts(read)).toEqual(['a blind write', valueOf(WRITE_KEY)].sort());
});

test('keys nobody reads are repaired by anti-entropy, without read repair', async () => {
  for (const key of AE_KEYS) await expect(cluster.readReplica('n3', BUCKET, key, PARTITIONS)).rejects.toMatchObject({ code: 'STORAGE_CORRUPT' });
  const othersReadRepairs = async () => (await metric(cluster.node('n1').url, 'dynamokv_read_repairs_total')) + (await metric(cluster.node('n2').url, 'dynamokv_read_repairs_total'));
  const readRepairsBefore = await othersReadRepairs();
  // n3 again, now exchanging trees every 200 ms (the last --anti-entropy-interval-ms wins).
  await cluster.stop('n3');
  const n3 = cluster.node('n3');
  const args = ['--replication', '3', '--partitions', String(PARTITIONS), '--gossip-interval-ms', '200', '--replica-timeout-ms', '1000', '--seeds', `127.0.0.1:${cluster.nodes[0]!.peerPort}`];
  aeNode = await NodeProcess.start({ nodeId: 'n3', dataDir: n3.dataDir, port: n3.port, peerPort: n3.peerPort, args: [...args, '--anti-entropy-interval-ms', '200'] });
  await waitFor('anti-entropy repair of n3', 40_000, async () => {
    for (const key of AE_KEYS) if (valuesOf(await cluster.readReplica('n3', BUCKET, key, PARTITIONS).catch(() => undefined))[0] !== valueOf(key)) return undefined;
    return true;
  });
  expect(await metric(n3.url, 'dynamokv_anti_entropy_keys_repaired_total')).toBeGreaterThanOrEqual(AE_KEYS.length);
  // n3 restarted (its counters are new): nobody repaired anything by reading.
  expect(await metric(n3.url, 'dynamokv_read_repairs_total')).toBe(0);
  expect(await othersReadRepairs()).toBe(readRepairsBefore);
});
