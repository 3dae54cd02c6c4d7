/**
 * Handoff on an in-process cluster (production code, in-memory storage and network, virtual
 * time): the cluster grows 3 -> 4 and shrinks 4 -> 3 while a writer keeps writing, with the
 * stream throttled so the writes land in the middle of the transfers. Anti-entropy is off, so
 * only the handoff stream and the writes to incoming owners can place the data.
 */
import { EMPTY_OBJECT, update } from '../core/dvv';
import { partitionOf } from '../core/partition';
import { waitingTransfers } from '../core/transition';
import { allHintsRange, partitionDataRange } from '../storage/keys';
import type { HandoffBatchRequest, HandoffStatusResponse } from '../transport/handoffMessages';
import { MemoryCluster, type SimNode } from './memoryCluster';
import { buildPeerHandlers } from './peerHandlers';

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

/**
 * Everything the must-show asks after a step, as a list of problems (empty when all is well).
 * `gone`: nodes cut off for good, left out of every check.
 */
async function problems(cluster: MemoryCluster, acked: Acked, gone: ReadonlySet<string> = new Set()): Promise<string[]> {
  const found: string[] = [];
  const nodes = cluster.nodes.filter((n) => !gone.has(n.id));
  const live = nodes.filter((n) => n.membership.ring().members.find((m) => m.id === n.id)?.state !== 'left');
  const ring = live[0]!.membership.ring();
  if (ring.pending !== undefined) found.push(`change still pending: ${waitingTransfers(ring).length} transfers waiting`);
  for (const node of nodes) if (node.membership.ring().version !== ring.version) found.push(`${node.id} is at ring version ${node.membership.ring().version}, not ${ring.version}`);
  for (const [key, v] of acked) {
    const partition = partitionOf('b', key, Q);
    const owners = ring.plan.owners[partition]!;
    if (owners.length !== N) found.push(`partition ${partition} has ${owners.length} owners`);
    const holders: string[] = [];
    for (const node of nodes) if ((await node.store.read(partition, 'b', key)) !== undefined) holders.push(node.id);
    if ([...holders].sort().join() !== [...owners].sort().join()) found.push(`${key} is held by ${holders.join()} but owned by ${owners.join()}`);
    const read = await live[0]!.coordinator.get({ bucket: 'b', key, read: { r: 2, pr: 0 }, consistent: false, conflictMode: 'siblings' });
    const values = (read?.siblings ?? []).map((s) => Buffer.from(s.value).toString());
    if (!values.includes(v)) found.push(`${key}: read ${values.join('|')} but ${v} was acknowledged`);
  }
  for (const node of nodes) {
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

/** Writes (new keys and overwrites) while virtual time runs, until the change commits (or `stepsMax`). */
async function writeThroughChange(cluster: MemoryCluster, acked: Acked, round: string, options: { stepsMax?: number; gone?: ReadonlySet<string> } = {}): Promise<{ writesDuringTransfer: number }> {
  let writesDuringTransfer = 0;
  const nodes = cluster.nodes.filter((n) => !options.gone?.has(n.id));
  for (let step = 0; step < (options.stepsMax ?? 400); step++) {
    const pending = nodes.some((n) => n.membership.ring().pending !== undefined);
    if (!pending) break;
    const coordinator = nodes[step % nodes.length]!;
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

describe('aborting a membership change on an in-process cluster', () => {
  test('a joiner that died mid-stream blocks other changes until an abort; after it nothing is lost, the receivers drop what they got, and the next change completes', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: Q, replicationFactor: N, seed: 17, handoff: true, handoffBytesPerSecondMax: 2000, handoffBatchKeysMax: 10 });
    await cluster.start();
    const acked: Acked = new Map();
    for (let i = 0; i < 200; i++) await write(cluster.nodes[i % 3]!, acked, `k${i}`, `v0-${i}`);
    const n4 = await cluster.addNode('n4');
    for (let step = 0; step < 100 && n4.handoff.view().every((t) => (t.keysDone ?? 0) === 0); step++) await cluster.advance(100);
    expect(n4.handoff.view().some((t) => t.role === 'receiving' && (t.keysDone ?? 0) > 0)).toBe(true);
    // n4 dies for good in the middle of its transfers: the change can never finish.
    cluster.network.isolate(n4.peerUrl);
    const gone = new Set(['n4']);
    await writeThroughChange(cluster, acked, 'stuck', { stepsMax: 20, gone });
    expect(cluster.node('n1').membership.ring().pending).toBeDefined();
    await expect(cluster.node('n3').membership.leave('n3')).rejects.toThrow(/membership change is in progress/);

    // Asked on a node that is not the claimant: it passes the abort on to the claimant (n1).
    const { aborted, ring } = await cluster.node('n2').membership.abort();
    expect(aborted).toMatchObject({ joining: ['n4'], leaving: [] });
    expect([ring.pending, ring.members.find((m) => m.id === 'n4')?.state]).toEqual([undefined, 'left']);
    expect(await cluster.node('n2').membership.abort()).toMatchObject({ aborted: undefined });
    await cluster.advance(10_000);
    expect(await problems(cluster, acked, gone)).toEqual([]);

    // The next change goes ahead, with writes during it, and completes.
    const n5 = await cluster.addNode('n5');
    await writeThroughChange(cluster, acked, 'after', { gone });
    for (let waitedMs = 0; waitedMs < 120_000 && cluster.nodes.some((n) => !gone.has(n.id) && n.membership.ring().pending !== undefined); waitedMs += 250) await cluster.advance(250);
    await cluster.advance(10_000);
    expect(n5.membership.ring().members.find((m) => m.id === 'n5')?.state).toBe('normal');
    expect(await problems(cluster, acked, gone)).toEqual([]);
  }, 60_000);

  test('an aborted leave: the leaver is a normal owner again and the nodes that received its partitions drop them', async () => {
    const cluster = new MemoryCluster({ nodes: 4, partitionCount: Q, replicationFactor: N, seed: 23, handoff: true, handoffBytesPerSecondMax: 2000, handoffBatchKeysMax: 10 });
    await cluster.start();
    const acked: Acked = new Map();
    for (let i = 0; i < 200; i++) await write(cluster.nodes[i % 4]!, acked, `k${i}`, `v0-${i}`);
    const planBefore = cluster.node('n1').membership.ring().plan;
    await cluster.node('n1').membership.leave('n3');
    await writeThroughChange(cluster, acked, 'leaving', { stepsMax: 15 });
    const received = cluster.nodes.reduce((sum, n) => sum + n.handoff.view().filter((t) => t.role === 'receiving' && (t.keysDone ?? 0) > 0).length, 0);
    expect(received).toBeGreaterThan(0);
    const { aborted } = await cluster.node('n1').membership.abort();
    expect(aborted).toMatchObject({ joining: [], leaving: ['n3'] });
    await cluster.advance(10_000);
    const ring = cluster.node('n4').membership.ring();
    expect([ring.members.find((m) => m.id === 'n3')?.state, ring.plan]).toEqual(['normal', planBefore]);
    expect(await problems(cluster, acked)).toEqual([]);
  }, 60_000);
});

describe('handoff and corrupt stored objects', () => {
  test('a sender skips corrupt copies instead of stalling the transfer; the keys stay readable from the other replicas', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: Q, replicationFactor: N, seed: 11, handoff: true, handoffBatchKeysMax: 10 });
    await cluster.start();
    const acked: Acked = new Map();
    for (let i = 0; i < 60; i++) await write(cluster.nodes[i % 3]!, acked, `c${i}`, `v-${i}`);
    // Flip the last (checksum) byte of every object n1 stores: every batch n1 sends would fail.
    const n1 = cluster.node('n1');
    let corrupted = 0;
    for (let p = 0; p < Q; p++) {
      for await (const [rawKey, value] of n1.engine.scan({ ...partitionDataRange(p), limit: 10_000 })) {
        const bad = Uint8Array.from(value);
        bad[bad.length - 1]! ^= 0xff;
        await n1.engine.put(rawKey, bad);
        corrupted++;
      }
    }
    expect(corrupted).toBeGreaterThan(0);
    await cluster.addNode('n4');
    expect(await cluster.untilNoChangePending(60_000)).toBe(true);
    expect(cluster.errors.some((e) => /skipped a corrupt stored object/.test(e))).toBe(true);
    for (const [key, v] of acked) {
      const read = await cluster.node('n2').coordinator.get({ bucket: 'b', key, read: { r: 2, pr: 0 }, consistent: false, conflictMode: 'siblings' });
      expect((read?.siblings ?? []).map((s) => Buffer.from(s.value).toString())).toContain(v);
    }
  }, 60_000);

  test('a sender first catches up with the other old owners, so the stream carries writes only another owner held', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: Q, replicationFactor: N, seed: 21, handoff: true });
    await cluster.start();
    // Each key is written to one owner only (as if the messages to the others were lost), in turn.
    const keys = Array.from({ length: 120 }, (_, i) => `only${i}`);
    for (const [i, key] of keys.entries()) {
      const holder = cluster.nodes[i % 3]!;
      await holder.store.update(partitionOf('b', key, Q), 'b', key, (current) =>
        update(current ?? EMPTY_OBJECT, current?.context ?? {}, `${holder.id}.direct`, value(`v-${key}`), { conflictMode: 'siblings', maxSiblings: 100 }).object,
      );
    }
    const n4 = await cluster.addNode('n4');
    expect(await cluster.untilNoChangePending(60_000)).toBe(true);
    // Right at the commit, before any old owner dropped (and synced) a partition: what n4 holds came by the stream.
    const ring = n4.membership.ring();
    const owned = keys.filter((k) => ring.plan.owners[partitionOf('b', k, Q)]!.includes('n4'));
    expect(owned.length).toBeGreaterThan(10);
    const missing: string[] = [];
    for (const key of owned) if ((await n4.store.read(partitionOf('b', key, Q), 'b', key)) === undefined) missing.push(key);
    expect(missing).toEqual([]);
  }, 60_000);
});

/**
 * Puts `intercept` in front of a node's handoffBatch handler on the in-memory network; the rest
 * of its peer handlers stay as the cluster built them.
 */
function interceptBatches(cluster: MemoryCluster, node: SimNode, intercept: (request: HandoffBatchRequest, apply: () => Promise<HandoffStatusResponse>) => Promise<HandoffStatusResponse>): void {
  const handlers = buildPeerHandlers(node.coordinator, node.membership, (bucket) => cluster.conflictModeOf(node, bucket), node.antiEntropy, node.handoff);
  cluster.network.register(node.peerUrl, { ...handlers, handoffBatch: (request) => intercept(request, () => handlers.handoffBatch(request)) });
}

const hex = (bytes: Uint8Array | null | undefined) => (bytes === null || bytes === undefined ? '' : Buffer.from(bytes).toString('hex'));

describe('handoff sender pipelining', () => {
  test('a sender has at most two batches of a transfer unanswered; batches that overtake each other still leave every write in place', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: Q, replicationFactor: N, seed: 29, handoff: true, handoffBatchKeysMax: 10 });
    await cluster.start();
    const acked: Acked = new Map();
    for (let i = 0; i < 300; i++) await write(cluster.nodes[i % 3]!, acked, `k${i}`, `v0-${i}`);
    const n4 = await cluster.addNode('n4');
    // Every other batch is held up for a few event-loop turns, so the one sent after it lands first.
    const inFlight = new Map<string, number>();
    const applied = new Map<string, Set<string>>();
    let inFlightMax = 0;
    let overtaken = 0;
    let calls = 0;
    interceptBatches(cluster, n4, async (request, apply) => {
      const id = request.transferId;
      inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
      inFlightMax = Math.max(inFlightMax, inFlight.get(id)!);
      try {
        for (let turn = 0; turn < (calls++ % 2 === 0 ? 8 : 1); turn++) await new Promise<void>((resolve) => setImmediate(resolve));
        const done = applied.get(id) ?? new Set<string>();
        applied.set(id, done);
        if (request.entries.length > 0 && request.after !== null && request.after !== undefined && !done.has(hex(request.after))) overtaken++;
        const reply = await apply();
        done.add(hex(request.cursor));
        return reply;
      } finally {
        inFlight.set(id, inFlight.get(id)! - 1);
      }
    });
    await writeThroughChange(cluster, acked, 'grow');
    expect(await cluster.untilNoChangePending(120_000)).toBe(true);
    await cluster.advance(10_000);
    expect({ inFlightMax, overtook: overtaken > 0 }).toEqual({ inFlightMax: 2, overtook: true });
    expect(await problems(cluster, acked)).toEqual([]);
  }, 60_000);

  test('a receiver that answers with retryAfterMs gets that pause before the next batch of the transfer', async () => {
    const cluster = new MemoryCluster({ nodes: 3, partitionCount: Q, replicationFactor: N, seed: 31, handoff: true, handoffBatchKeysMax: 5 });
    await cluster.start();
    const acked: Acked = new Map();
    for (let i = 0; i < 300; i++) await write(cluster.nodes[i % 3]!, acked, `k${i}`, `v0-${i}`);
    const n4 = await cluster.addNode('n4');
    const sentAtMs = new Map<string, number[]>();
    interceptBatches(cluster, n4, async (request, apply) => {
      sentAtMs.set(request.transferId, [...(sentAtMs.get(request.transferId) ?? []), cluster.runtime.nowMs()]);
      return { ...(await apply()), retryAfterMs: 3000 };
    });
    expect(await cluster.untilNoChangePending(600_000)).toBe(true);
    await cluster.advance(10_000);
    // The next batch may leave before the answer (two in flight), the one after it only once the
    // pause after that answer is over; answers come back at once here (no virtual time passes).
    const gapsMs = [...sentAtMs.values()].flatMap((times) => times.slice(2).map((t, i) => t - times[i]!));
    expect(gapsMs.length).toBeGreaterThan(5);
    expect(Math.min(...gapsMs)).toBeGreaterThanOrEqual(3000);
    expect(await problems(cluster, acked)).toEqual([]);
  }, 60_000);
});
