/**
 * The workload and the checks of the data-movement tests on real processes (test/cluster
 * handoff, grow/shrink and abort tests): a writer and a reader that run while the ring changes,
 * and `waitSettled`, which waits for a change to finish and then checks what issue 4 asks after
 * each step.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalCluster, getKey, http, putText, siblingTexts, valuesOf, waitFor } from './cluster';

export interface WorkloadOptions {
  readonly bucket: string;
  /** Keys k-0 .. k-(preloadKeys-1) exist before the writer starts; the writer overwrites them too. */
  readonly preloadKeys: number;
  /** Pause between two writes (one write at a time): a steady trickle lands in every transfer. */
  readonly pauseMs?: number;
}

export interface Writer {
  /** Key -> the value of its last acknowledged write. */
  readonly acked: Map<string, string>;
  /** Values written after the key's last acknowledged one whose write failed: a failed write is not rolled back and may win. */
  readonly unacked: Map<string, string[]>;
  readonly failures: Map<string, number>;
  stop(): Promise<void>;
}

/** Writes new keys and overwrites old ones (with the context it read), one at a time, through every live node in turn. */
export function startWriter(cluster: LocalCluster, nodes: () => readonly string[], options: WorkloadOptions): Writer {
  const acked = new Map<string, string>();
  const unacked = new Map<string, string[]>();
  const failures = new Map<string, number>();
  let stopped = false;
  const run = (async () => {
    for (let i = 0; !stopped && i < 1_000_000; i++) {
      const live = nodes();
      const via = cluster.node(live[i % live.length]!);
      const key = i % 2 === 0 ? `w-${i}` : `k-${(i * 13) % options.preloadKeys}`;
      const value = `${key}@${i}`;
      const before = await getKey(via.url, options.bucket, key).catch(() => undefined);
      const context = before?.headers.get('x-dynamo-context') ?? undefined;
      const answer = await putText(via.url, options.bucket, key, value, context === undefined ? {} : { context }).catch(() => undefined);
      if (answer?.status === 204) {
        acked.set(key, value);
        unacked.delete(key);
      } else {
        unacked.set(key, [...(unacked.get(key) ?? []), value]);
        const why = String(answer?.status ?? 'no answer');
        failures.set(why, (failures.get(why) ?? 0) + 1);
      }
      await sleep(options.pauseMs ?? 25);
    }
  })();
  return {
    acked,
    unacked,
    failures,
    stop: async () => {
      stopped = true;
      await run;
    },
  };
}

export interface Reader {
  /** Reads answered 200 or 300. */
  readonly reads: { count: number };
  /** Reads that answered with a value nobody ever wrote for the key: must stay 0. */
  readonly foreign: string[];
  /** Reads that returned an older value than the last one acknowledged before the read began. */
  readonly stale: { count: number };
  readonly failures: Map<string, number>;
  stop(): Promise<void>;
}

/** Value `${key}@${i}` -> i; the preload values (`${pad}${n}`) count as written before everything. */
function sequenceOf(key: string, value: string): number | undefined {
  if (!value.startsWith(`${key}@`)) return undefined;
  const n = Number(value.slice(key.length + 1));
  return Number.isInteger(n) ? n : undefined;
}

/**
 * Reads acknowledged keys through every live node in turn while the ring changes, and checks
 * each answer: only values written for that key (counted in `foreign` otherwise), and how often
 * a read saw an older value than the last one acknowledged before it began (`stale`; Dynamo
 * allows it while replicas catch up, so the tests report it rather than forbid it).
 */
export function startReader(cluster: LocalCluster, nodes: () => readonly string[], writer: Writer, options: WorkloadOptions & { preloadValue: (n: number) => string }): Reader {
  const reads = { count: 0 };
  const stale = { count: 0 };
  const foreign: string[] = [];
  const failures = new Map<string, number>();
  let stopped = false;
  const run = (async () => {
    for (let i = 0; !stopped && i < 1_000_000; i++) {
      const keys = [...writer.acked.keys()];
      if (keys.length === 0) {
        await sleep(50);
        continue;
      }
      const key = keys[(i * 7919) % keys.length]!;
      const expected = writer.acked.get(key)!;
      const live = nodes();
      const answer = await getKey(cluster.node(live[i % live.length]!).url, options.bucket, key).catch(() => undefined);
      if (answer === undefined || (answer.status !== 200 && answer.status !== 300)) {
        const why = String(answer?.status ?? 'no answer');
        failures.set(why, (failures.get(why) ?? 0) + 1);
      } else {
        reads.count++;
        const values = answer.status === 200 ? [answer.body] : siblingTexts(answer);
        const preload = key.startsWith('k-') ? options.preloadValue(Number(key.slice(2))) : undefined;
        for (const v of values) if (v !== preload && sequenceOf(key, v) === undefined) foreign.push(`${key}=${v.slice(0, 40)}`);
        const newest = Math.max(...values.map((v) => sequenceOf(key, v) ?? -1));
        if (newest < (sequenceOf(key, expected) ?? -1)) stale.count++;
      }
      await sleep(options.pauseMs ?? 25);
    }
  })();
  return {
    reads,
    foreign,
    stale,
    failures,
    stop: async () => {
      stopped = true;
      await run;
    },
  };
}

/** Transfers of the pending change, summed over what each node's GET /v1/handoff lists. */
export async function transfersPending(cluster: LocalCluster, ids: readonly string[]): Promise<number> {
  let total = 0;
  for (const id of ids) total += (JSON.parse((await http(cluster.node(id).url, 'GET', '/v1/handoff')).body) as { transfers: unknown[] }).transfers.length;
  return total;
}

/**
 * Waits until the change committed on every live node and old owners dropped what they no
 * longer own, then checks: one ring version everywhere, every partition with exactly N owners,
 * hint backlog 0, every acknowledged key held by exactly its owners among the running nodes
 * (so no node, a left one included, keeps a partition it does not own), and every acknowledged
 * write readable with its latest value (or a later one whose write reported failure but landed).
 */
export async function waitSettled(cluster: LocalCluster, live: readonly string[], writer: { readonly acked: ReadonlyMap<string, string>; readonly unacked: ReadonlyMap<string, readonly string[]> }, options: { bucket: string; partitions: number; replication?: number }): Promise<void> {
  const { bucket, partitions } = options;
  await waitFor('the change to commit on every node', 60_000, async () => ((await transfersPending(cluster, live)) === 0 ? true : undefined));
  const ring = await waitFor('one ring version everywhere', 20_000, async () => {
    const rings = await Promise.all(live.map((id) => cluster.ring(id)));
    return new Set(rings.map((r) => r.version)).size === 1 ? rings[0] : undefined;
  });
  const n = options.replication ?? 3;
  expect(ring.partitions.filter((p) => new Set(p.owners).size !== n || p.owners.some((id) => !live.includes(id)))).toEqual([]);
  await waitFor('hint backlog 0', 30_000, async () => ((await cluster.hintBacklogTotal()) === 0 ? true : undefined));
  await waitFor('every key held by exactly its N owners', 60_000, async () => {
    for (const key of writer.acked.keys()) {
      const owners = LocalCluster.primaries(ring, bucket, key).sort();
      const holders = (await cluster.holders(bucket, key, partitions)).sort();
      if (owners.join() !== holders.join()) return undefined;
    }
    return true;
  });
  // A write acknowledged by W of N replicas may still be missing on the R a read asks first; read
  // repair and anti-entropy bring it to all owners. So a key that reads stale is read again until
  // the bound: a write that no replica kept never comes back, and fails the check.
  for (const key of [...writer.acked.keys()]) {
    // The writer keeps writing meanwhile: a read may return a write still in flight, so what
    // counts as newest is looked up again at every attempt, when that write has been answered.
    const newestNow = () => [writer.acked.get(key)!, ...(writer.unacked.get(key) ?? [])];
    let newest = newestNow();
    let values: string[] = [];
    for (let attempt = 0; attempt < STALE_READ_ATTEMPTS_MAX; attempt++) {
      newest = newestNow();
      const answer = await getKey(cluster.node(live[attempt % live.length]!).url, bucket, key);
      values = answer.status === 200 ? [answer.body] : answer.status === 300 ? siblingTexts(answer) : [`status ${answer.status}`];
      if (values.some((v) => newest.includes(v))) break;
      await new Promise((resolve) => setTimeout(resolve, STALE_READ_INTERVAL_MS));
    }
    newest = newestNow();
    if (!values.some((v) => newest.includes(v))) {
      // What every running node holds for the key, so a failure shows where the write went.
      const held: Record<string, string[]> = {};
      for (const node of cluster.running()) held[node.id] = valuesOf(await cluster.readReplica(node.id, bucket, key, partitions)).map((v) => v.slice(-24));
      expect({ key, newest, read: values, held }).toEqual({ key, found: 'ok' });
    }
  }
}

/** How long waitSettled lets a stale read heal: longer than one anti-entropy round (10 s). */
const STALE_READ_ATTEMPTS_MAX = 60;
const STALE_READ_INTERVAL_MS = 500;
