/**
 * Issue 4's must-show on real node processes: a writer and a reader run throughout while the
 * cluster grows 3 -> 4 -> 5 and shrinks 5 -> 4 -> 3, one node at a time (the second shrink is
 * the claimant's own leave). The stream is throttled so writes and reads land inside the
 * transfers. After each step (handoffWorkload.ts waitSettled):
 * - every acknowledged write reads back with its latest value (or among siblings);
 * - every partition has exactly N owners, all of them live members;
 * - every key is held by exactly its owners, so no node keeps a partition it does not own (the
 *   nodes that left are still running and must hold nothing);
 * - hint and transfer backlogs are 0.
 * Throughout, the reader never sees a value nobody wrote for its key.
 */
import { LocalCluster, errorCode, getKey, http, putText, waitFor } from '../support/cluster';
import { startReader, startWriter, transfersPending, waitSettled } from '../support/handoffWorkload';
import { killAllNodes } from '../support/nodeProcess';

const BUCKET = 'grow';
const Q = 16;
const PRELOAD_KEYS = 300;
const VALUE_PAD = 'x'.repeat(1000);
const preloadValue = (n: number) => `${VALUE_PAD}${n}`;
const WORKLOAD = { bucket: BUCKET, preloadKeys: PRELOAD_KEYS, pauseMs: 20 };

describe('grow 3 -> 5 and shrink 5 -> 3 one node at a time with a writer and a reader throughout', () => {
  let cluster: LocalCluster | undefined;

  beforeAll(async () => {
    // 128 KiB/s per sender keeps each change streaming for a second or more.
    cluster = await LocalCluster.start({ nodes: 5, joined: 3, partitions: Q, extraArgs: ['--handoff-bytes-per-second-max', '131072'] });
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
    await killAllNodes();
  });

  test('after every step: all acknowledged writes readable, exactly N replicas per partition, nothing stray, backlogs 0', async () => {
    const c = cluster!;
    for (let i = 0; i < PRELOAD_KEYS; i++) expect((await putText(c.nodes[i % 3]!.url, BUCKET, `k-${i}`, preloadValue(i))).status).toBe(204);
    let live: string[] = ['n1', 'n2', 'n3'];
    const writer = startWriter(c, () => live, WORKLOAD);
    for (let i = 0; i < PRELOAD_KEYS; i++) if (!writer.acked.has(`k-${i}`)) writer.acked.set(`k-${i}`, preloadValue(i));
    const reader = startReader(c, () => live, writer, { ...WORKLOAD, preloadValue });
    const steps: string[] = [];
    /** Waits for the change to finish streaming (writes must land meanwhile), then checks everything. */
    const settle = async (label: string, writesBefore: number) => {
      await waitFor('the transfers to finish', 60_000, async () => ((await transfersPending(c, live)) === 0 ? true : undefined));
      const duringTransfers = writer.acked.size - writesBefore;
      if (label !== 'final') expect(duringTransfers).toBeGreaterThan(0);
      await waitSettled(c, live, writer, { bucket: BUCKET, partitions: Q });
      steps.push(`${label}: ${writer.acked.size} keys (${duringTransfers} written while streaming), ${reader.reads.count} reads so far`);
    };
    const post = (via: string, path: string, body: object) => http(c.node(via).url, 'POST', path, { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    try {
      for (const joiner of ['n4', 'n5']) {
        const readsBefore = reader.reads.count;
        const writesBefore = writer.acked.size;
        const join = await post(joiner, '/v1/admin/join', { seed: c.node('n1').peerUrl.replace('http://', '') });
        expect(join.status).toBe(200);
        live = [...live, joiner];
        await settle(`grow to ${live.length}`, writesBefore);
        expect(reader.reads.count).toBeGreaterThan(readsBefore);
        expect((await c.ring('n1')).members.find((m) => m.id === joiner)?.state).toBe('normal');
      }
      // Shrink: n2 leaves, then n1, the claimant and the seed, leaves through another node.
      for (const [leaver, via] of [['n2', 'n1'], ['n1', 'n3']] as const) {
        const readsBefore = reader.reads.count;
        const writesBefore = writer.acked.size;
        const leave = await post(via, '/v1/admin/leave', { node: leaver });
        expect(leave.status).toBe(200);
        live = live.filter((id) => id !== leaver);
        await settle(`shrink to ${live.length}`, writesBefore);
        expect(reader.reads.count).toBeGreaterThan(readsBefore);
        expect((await c.ring(live[0]!)).members.find((m) => m.id === leaver)?.state).toBe('left');
        const refused = await getKey(c.node(leaver).url, BUCKET, 'k-1');
        expect({ status: refused.status, code: errorCode(refused) }).toEqual({ status: 503, code: 'NODE_LEFT' });
      }
    } finally {
      await writer.stop();
      await reader.stop();
    }
    // The writes that landed while the last checks ran are checked too.
    await settle('final', writer.acked.size);
    expect(reader.foreign).toEqual([]);
    process.stdout.write(
      `grow/shrink: ${steps.join('; ')}; failed writes by status ${JSON.stringify(Object.fromEntries(writer.failures))}; ` +
        `${reader.reads.count} reads, ${reader.stale.count} stale, failed reads by status ${JSON.stringify(Object.fromEntries(reader.failures))}\n`,
    );
  }, 180_000);
});
