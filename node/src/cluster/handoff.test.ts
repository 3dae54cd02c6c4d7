/**
 * Handoff on an in-process cluster (production code, in-memory storage and network, virtual
 * time): the cluster grows 3 -> 4 and shrinks 4 -> 3 while a writer keeps writing, with the
 * stream throttled so the writes land in the middle of the transfers. Anti-entropy is off, so
 * only the handoff stream and the writes to incoming owners can place the data.
 */
import { partitionOf } from '../core/partition';
import { waitingTransfers } from '../core/transition';
import { allHintsRange, partitionDataRange } from '../storage/keys';
import { MemoryCluster, type SimNode } from './memoryCluster';

const Q = 16;
const N = 3;
const value = (v: string) => ({ value: Buffer.from(v), contentType: 'text/plain', lastModifiedMs: 1, deleted: false });

/** Acknowledged writes: key -> the last value acknowledged for it. */
type Acked = Map<string, string>;

async function write(node: SimNode, acked: Acked, key: string, v: string): Promise<void> {
  const current = await node.coordinator.get({ bucket: 'b', key, read: { r: 2, pr: 0 }, consistent: false, conflictMode: 'siblings' });
  await node.coordinator.put({ bucket: 'b', key, value: value(v), context: current?.context ?? {}, write: { w: 2, dw: 0, pw: 0 }, conflictMode: 'siblings' });
  acked.set(key, v);
}

async function countEntries(node: SimNode, range: { gte: Uint8Array; lt: Uint8Array }): Promise<number> {
  return node.engine.count(range);
}

/** Everything the must-show asks after a step, as a list of problems (empty when all is well). */
async function problems(cluster: MemoryCluster, acked: Acked): Promise<string[]> {
  const found: string[] = [];
  const live = cluster.nodes.filter((n) => n.membership.ring().members.find((m) => m.id === n.id)?.state !== 'left');
  const ring = live[0]!.membership.ring();
  if (ring.pending !== undefined) found.push(`change still pending: ${waitingTransfers(ring).length} transfers waiting`);
  for (const node of cluster.nodes) if (node.membership.ring().version !== ring.version) found.push(`${node.id} is at ring version ${node.membership.ring().version}, not ${ring.version}`);
  for (const [key, v] of acked) {
    const partition = partitionOf('b', key, Q);
    const owners = ring.plan.owners[partition]!;
    if (owners.length !== N) found.push(`partition ${partition} has ${owners.length} owners`);
    const holders: string[] = [];
    for (const node of cluster.nodes) if ((await node.store.read(partition, 'b', key)) !== undefined) holders.push(node.id);
    if ([...holders].sort().join() !== [...owners].sort().join()) found.push(`${key} is held by ${holders.join()} but owned by ${owners.join()}`);
    const read = await live[0]!.coordinator.get({ bucket: 'b', key, read: { r: 2, pr: 0 }, consistent: false, conflictMode: 'siblings' });
    const values = (read?.siblings ?? []).map((s) => Buffer.from(s.value).toString());
    if (!values.includes(v)) found.push(`${key}: read ${values.join('|')} but ${v} was acknowledged`);
  }
  for (const node of cluster.nodes) {
    for (let p = 0; p < Q; p++) {
      if (ring.plan.owners[p]!.includes(node.id)) continue;
      const stray = await countEntries(node, partitionDataRange(p));
      if (stray > 0) found.push(`${node.id} keeps ${stray} keys of partition ${p} it does not own`);
    }
    const hints = await countEntries(node, allHintsRange());
    if (hints > 0) found.push(`${node.id} has ${hints} hints left`);
  }
  return found;
}

/** Writes (new keys and overwrites) while virtual time runs, until the change commits. */
async function writeThroughChange(cluster: MemoryCluster, acked: Acked, round: string): Promise<{ writesDuringTransfer: number }> {
  let writesDuringTransfer = 0;
  for (let step = 0; step < 400; step++) {
    const pending = cluster.nodes.some((n) => n.membership.ring().pending !== undefined);
    if (!pending) break;
    const coordinator = cluster.nodes[step % cluster.nodes.length]!;
    const isLeft = coordinator.membership.ring().members.find((m) => m.id === coordinator.id)?.state === 'left';
    if (!isLeft) {
      await write(coordinator, acked, `k${(step * 7) % 300}`, `${round}-${step}`);
      await write(coordinator, acked, `${round}-new${step}`, `${round}-${step}`);
      writesDuringTransfer += 2;
    }
    await cluster.advance(200);
  }
  return { writesDuringTransfer };
}

describe('handoff on an in-process cluster', () => {
  test('grow 3 -> 4 and shrink 4 -> 3 with writes during the transfers: every write readable, exactly N copies, nothing stray', async () => {
    // ~2 KB/s with batches of 10 keys keeps every transfer open across many writer steps.
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: Q, replicationFactor: N, seed: 7, handoff: true, handoffBytesPerSecondMax: 2000, handoffBatchKeysMax: 10 });
    await cluster.start();
    const acked: Acked = new Map();
    for (let i = 0; i < 300; i++) await write(cluster.nodes[i % 3]!, acked, `k${i}`, `v0-${i}`);

    const n4 = await cluster.addNode('n4');
    expect(n4.membership.ring().members.find((m) => m.id === 'n4')?.state).toBe('joining');
    expect(waitingTransfers(n4.membership.ring()).length).toBeGreaterThan(0);
    // A few seconds in, the receiver shows its transfers under way with the sender's key count.
    let receiving = n4.handoff.view().filter((t) => t.role === 'receiving');
    for (let step = 0; step < 100 && receiving.length === 0; step++) {
      await cluster.advance(100);
      receiving = n4.handoff.view().filter((t) => t.role === 'receiving');
    }
    expect(receiving.length).toBeGreaterThan(0);
    for (const t of receiving) expect({ state: t.state, totalKnown: (t.keysTotal ?? 0) > 0 }).toEqual({ state: 'streaming', totalKnown: true });
    const grow = await writeThroughChange(cluster, acked, 'grow');
    expect(grow.writesDuringTransfer).toBeGreaterThan(10);
    expect(await cluster.untilNoChangePending(120_000)).toBe(true);
    await cluster.advance(10_000);
    expect(n4.membership.ring().members.find((m) => m.id === 'n4')?.state).toBe('normal');
    expect(await problems(cluster, acked)).toEqual([]);
    expect(n4.handoffCounts.keys).toBe(0);
    expect(cluster.nodes.reduce((sum, n) => sum + n.handoffCounts.keys, 0)).toBeGreaterThan(0);

    // The claimant itself leaves: the claimant role moves on and the change still completes.
    await cluster.node('n1').membership.leave('n1');
    expect(cluster.node('n1').membership.ring().members.find((m) => m.id === 'n1')?.state).toBe('leaving');
    const shrink = await writeThroughChange(cluster, acked, 'shrink');
    expect(shrink.writesDuringTransfer).toBeGreaterThan(10);
    expect(await cluster.untilNoChangePending(120_000)).toBe(true);
    await cluster.advance(10_000);
    expect(cluster.node('n2').membership.ring().members.find((m) => m.id === 'n1')?.state).toBe('left');
    expect(await problems(cluster, acked)).toEqual([]);
    expect(await countEntries(cluster.node('n1'), partitionDataRange(0))).toBe(0);
    expect(cluster.errors.filter((e) => !/not pending|unreachable|retry later|has not recorded/.test(e))).toEqual([]);
  }, 60_000);
});
