/**
 * Tombstone reaping on an in-process cluster (production coordinator, hints, anti-entropy and
 * reaper over in-memory storage and network, virtual time). Each test deletes keys while some
 * node that holds an old copy is cut off, lets the grace period pass, and checks that
 * - nothing is reaped while that node is away, however long;
 * - once it is back, anti-entropy or hint delivery replaces its copy, then every replica reaps;
 * - no replica ever holds a live copy of a deleted value again, and reads answer "not found";
 * - a write after the reap is not lost to a dot reused by a node that forgot the key.
 */
import { liveSiblings } from '../core/dvv';
import { partitionOf, preferenceList } from '../core/partition';
import { activeMembers } from '../core/ring';
import type { VersionVector } from '../core/version';
import { AntiEntropy } from './antiEntropy';
import { MemoryCluster, type SimNode } from './memoryCluster';
import { Reaper } from './reaper';

const Q = 16;
const GRACE_MS = 5_000;
const INTERVAL_MS = 500;

interface Harness {
  readonly cluster: MemoryCluster;
  readonly reapers: Map<string, Reaper>;
  readonly reaped: Map<string, number>;
}

/**
 * Gives every node a reaper, and anti-entropy that knows the grace period (the MemoryCluster's
 * own anti-entropy loop is off; it still answers its peers).
 */
function attach(cluster: MemoryCluster, options: { antiEntropy: boolean }): Harness {
  const reapers = new Map<string, Reaper>();
  const reaped = new Map<string, number>();
  for (const node of cluster.nodes) {
    const transport = cluster.network.transportFor(node.peerUrl);
    let renewals = 0;
    const reaper = new Reaper(
      node.engine,
      node.store,
      node.membership,
      transport,
      cluster.runtime,
      { tombstonesReaped: (n) => reaped.set(node.id, (reaped.get(node.id) ?? 0) + n), tombstonesPending: () => undefined },
      { intervalMs: INTERVAL_MS, graceMs: GRACE_MS, keysPerRoundMax: 50, scanKeysPerRoundMax: 400, timeoutMs: 500 },
      () => {
        node.actorId = `${node.id}.reaped${++renewals}`;
      },
      (what, error) => cluster.errors.push(`${node.id} ${what}: ${(error as Error).message}`),
    );
    node.store.onObjectChanged = (partition, bucket, key, before, after) => {
      node.trees.observe(partition, bucket, key, before, after);
      reaper.observe(partition, bucket, key, before, after);
    };
    reaper.start();
    reapers.set(node.id, reaper);
    if (options.antiEntropy) {
      const ae = new AntiEntropy(
        node.store,
        node.trees,
        node.coordinator,
        node.membership,
        transport,
        cluster.runtime,
        { exchanged: () => undefined, keysRepaired: () => undefined, bytesExchanged: () => undefined },
        { intervalMs: 300, keysPerExchangeMax: 1000, bytesPerExchangeMax: 16 << 20, timeoutMs: 500, maxSiblings: 100, tombstoneGraceMs: GRACE_MS },
        (what, error) => cluster.errors.push(`${node.id} ${what}: ${(error as Error).message}`),
      );
      ae.start();
    }
  }
  return { cluster, reapers, reaped };
}

const text = (v: string, nowMs: number, deleted = false) => ({ value: Buffer.from(v), contentType: 'text/plain', lastModifiedMs: nowMs, deleted });

async function read(node: SimNode, key: string) {
  return node.coordinator.get({ bucket: 'b', key, read: { r: 2, pr: 0 }, consistent: false, conflictMode: 'siblings' });
}

async function write(cluster: MemoryCluster, node: SimNode, key: string, v: string, context: VersionVector = {}, deleted = false): Promise<void> {
  await node.coordinator.put({ bucket: 'b', key, value: text(v, cluster.runtime.nowMs(), deleted), context, write: { w: 2, dw: 0, pw: 0 }, conflictMode: 'siblings' });
}

function primaries(cluster: MemoryCluster, key: string): string[] {
  const ring = cluster.nodes[0]!.membership.ring();
  return [...preferenceList(ring.plan, partitionOf('b', key, Q), activeMembers(ring).map((m) => m.id)).primaries];
}

/** What every node's own storage holds for the key: 'value' (a live sibling), 'tombstone' or 'none'. */
async function copies(cluster: MemoryCluster, key: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const node of cluster.nodes) {
    const object = await node.store.read(partitionOf('b', key, Q), 'b', key);
    found[node.id] = object === undefined ? 'none' : liveSiblings(object).length > 0 ? 'value' : 'tombstone';
  }
  return found;
}

/**
 * Advances virtual time step by step, failing as soon as a deleted key shows a live value on any
 * node after `resurrectionCheckFrom` says it may no longer (every copy was a tombstone or gone).
 */
async function runWatching(h: Harness, deleted: readonly string[], ms: number, settledKeys: Set<string>): Promise<void> {
  for (let waited = 0; waited < ms; waited += 250) {
    await h.cluster.advance(250);
    for (const key of deleted) {
      const now = await copies(h.cluster, key);
      const live = Object.values(now).includes('value');
      if (settledKeys.has(key)) expect({ key, copies: now, live }).toEqual({ key, copies: now, live: false });
      else if (!live) settledKeys.add(key);
    }
  }
}

describe('tombstone reaping on an in-process cluster', () => {
  test('a replica cut off during the deletes blocks every reap until anti-entropy gave it the tombstones; then all reap and nothing comes back', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: Q, replicationFactor: 3, seed: 21 });
    await cluster.start();
    const h = attach(cluster, { antiEntropy: true });
    const [n1, n2, n3] = cluster.nodes as [SimNode, SimNode, SimNode];
    const deleted = Array.from({ length: 20 }, (_, i) => `d${i}`);
    const kept = Array.from({ length: 10 }, (_, i) => `k${i}`);
    for (const key of [...deleted, ...kept]) await write(cluster, n1, key, `old-${key}`);
    await cluster.advance(1000);
    const tombstoneContexts = new Map<string, VersionVector>();

    cluster.network.isolate(n3.peerUrl);
    await cluster.advance(3000);
    for (const key of deleted) {
      const current = await read(n1, key);
      await write(cluster, n1, key, '', current!.context, true);
      tombstoneContexts.set(key, (await n2.store.read(partitionOf('b', key, Q), 'b', key))!.context);
    }
    // Far past the grace period with n3 away: n1 and n2 keep every tombstone, n3 its old values.
    await cluster.advance(GRACE_MS * 4);
    for (const key of deleted) expect(await copies(cluster, key)).toEqual({ n1: 'tombstone', n2: 'tombstone', n3: 'value' });
    expect(h.reapers.get('n1')!.summary().lastRound?.blocked['member-down']).toBeGreaterThan(0);
    expect(h.reaped.size).toBe(0);

    cluster.network.heal();
    const settled = new Set<string>();
    await runWatching(h, deleted, 30_000, settled);
    for (const key of deleted) expect(await copies(cluster, key)).toEqual({ n1: 'none', n2: 'none', n3: 'none' });
    for (const key of deleted) expect(settled.has(key)).toBe(true);
    for (const key of deleted) expect(await read(n2, key)).toBeUndefined();
    for (const key of kept) expect(liveSiblings((await read(n3, key))!).map((s) => Buffer.from(s.value).toString())).toEqual([`old-${key}`]);
    expect([...h.reaped.values()].reduce((a, b) => a + b, 0)).toBe(deleted.length * 3);

    // A write after the reap, coordinated by a node that forgot the key, survives a later write
    // that carries the old tombstone's context: the reaper renewed the node's actor id, so the
    // new write's dot is not one that context already covers.
    const key = deleted.find((k) => primaries(cluster, k).includes('n1'))!;
    await write(cluster, n1, key, 'fresh');
    await write(cluster, n2, key, 'late', tombstoneContexts.get(key)!);
    expect(liveSiblings((await read(n3, key))!).map((s) => Buffer.from(s.value).toString()).sort()).toEqual(['fresh', 'late']);
    expect(cluster.errors.filter((e) => !/unreachable|went away/.test(e))).toEqual([]);
  }, 60_000);

  test('a fallback holding a hinted old value blocks the reap while it is away; after it delivers, the tombstone still wins and is reaped', async () => {
    const cluster = new MemoryCluster({ nodes: 4, partitionCount: Q, replicationFactor: 3, seed: 5 });
    await cluster.start();
    const h = attach(cluster, { antiEntropy: false });
    const key = 'hinted';
    const [p1, p2, p3] = primaries(cluster, key).map((id) => cluster.node(id)) as [SimNode, SimNode, SimNode];
    const fallback = cluster.nodes.find((n) => ![p1, p2, p3].includes(n))!;
    // p3 is away when the value is written: the fallback takes p3's copy with a hint.
    cluster.network.isolate(p3.peerUrl);
    await cluster.advance(3000);
    await write(cluster, p1, key, 'old');
    expect((await copies(cluster, key))[fallback.id]).toBe('value');
    // p3 returns, the fallback goes away before delivering; the delete reaches all three primaries.
    cluster.network.isolate(fallback.peerUrl);
    cluster.network.heal(p3.peerUrl);
    await cluster.advance(3000);
    const current = await read(p1, key);
    await write(cluster, p1, key, '', current!.context, true);
    await cluster.advance(3000);
    expect(await copies(cluster, key)).toEqual({ [p1.id]: 'tombstone', [p2.id]: 'tombstone', [p3.id]: 'tombstone', [fallback.id]: 'value' });
    await cluster.advance(GRACE_MS * 3);
    expect(h.reaped.size).toBe(0);

    // The fallback returns and delivers the old value to p3, where the tombstone supersedes it.
    cluster.network.heal();
    const settled = new Set<string>();
    await runWatching(h, [key], 20_000, settled);
    expect(await copies(cluster, key)).toEqual({ [p1.id]: 'none', [p2.id]: 'none', [p3.id]: 'none', [fallback.id]: 'none' });
    expect(await read(p2, key)).toBeUndefined();
    expect(cluster.errors.filter((e) => !/unreachable|went away/.test(e))).toEqual([]);
  }, 60_000);

  test('a tombstone younger than the grace period stays even when every member holds it', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: Q, replicationFactor: 3, seed: 8 });
    await cluster.start();
    const h = attach(cluster, { antiEntropy: false });
    const n1 = cluster.nodes[0]!;
    await write(cluster, n1, 'young', 'v');
    await write(cluster, n1, 'young', '', (await read(n1, 'young'))!.context, true);
    await cluster.advance(GRACE_MS - 1000);
    expect(await copies(cluster, 'young')).toEqual({ n1: 'tombstone', n2: 'tombstone', n3: 'tombstone' });
    expect(h.reapers.get('n1')!.summary().pending).toBe(1);
    await cluster.advance(3000);
    expect(await copies(cluster, 'young')).toEqual({ n1: 'none', n2: 'none', n3: 'none' });
    expect(h.reapers.get('n1')!.summary()).toMatchObject({ reaped: 1, pending: 0 });
  }, 30_000);
});
