/**
 * A bounded Jepsen-style set test on real node processes: `verify(options)`.
 *
 * 1. Start a local cluster (5 nodes, N=3 by default) on 127.0.0.1 and make one bucket lww.
 * 2. Run the set workload (setWorkload.ts) through every node as coordinator while the seeded
 *    fault schedule (faults.ts) pauses nodes with SIGSTOP and kills -9 and restarts them.
 * 3. Heal: resume and restart every node, wait for gossip convergence and for a hint backlog of 0
 *    on every node.
 * 4. Read every key with r=all (retried, bounded), wait until its primary replicas hold equal
 *    objects, and judge it (setCheck.ts): total / acknowledged / lost / unexpected.
 *
 * The run fails on any lost acknowledged element in the siblings bucket, on anything unexpected or
 * malformed in either bucket, on a failed heal or final read, and on replicas that do not
 * converge. The lww bucket's losses are expected (concurrent read-modify-writes overwrite one
 * another by timestamp) and only reported. Every process is SIGKILLed at the end, pass or fail.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoClient } from '../../client/src';
import { equalObjects } from '../../node/src/core/dvv';
import type { VersionedObject } from '../../node/src/core/version';
import { LocalCluster, http, waitFor, type RingView } from '../support/cluster';
import { FaultRunner, describeFault, planFaults, type Fault } from './faults';
import { addVerdict, emptyFigures, judgeSet, type SetFigures } from './setCheck';
import { SetWorkload, keyNames, type WorkloadStats } from './setWorkload';

export const SIBLINGS_BUCKET = 'chaos';
export const LWW_BUCKET = 'chaoslww';

export interface VerifyOptions {
  readonly seed: number;
  /** Length of the workload (and of the fault schedule). */
  readonly durationMs: number;
  readonly nodes?: number;
  readonly replication?: number;
  readonly clients?: number;
  readonly keysPerBucket?: number;
  readonly gossipIntervalMs?: number;
  readonly replicaTimeoutMs?: number;
  /** Bound on heal (convergence, then hints) and on each of the final read and convergence waits. */
  readonly settleTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

export interface VerifyResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly siblings: SetFigures;
  readonly lww: SetFigures;
  readonly workload: WorkloadStats;
  readonly faults: readonly Fault[];
  readonly violations: readonly string[];
  readonly replay: string;
  readonly elapsedMs: number;
}

const VIOLATIONS_LISTED_MAX = 20;
const FINAL_READ_RETRY_MS = 250;

export function replayCommand(seed: number, durationMs: number): string {
  return `npm run verify -- --seed ${seed} --duration-s ${Math.round(durationMs / 1000)}`;
}

export async function verify(options: VerifyOptions): Promise<VerifyResult> {
  const startedMs = Date.now();
  const log = options.log ?? (() => undefined);
  const nodeCount = options.nodes ?? 5;
  const settleTimeoutMs = options.settleTimeoutMs ?? 30_000;
  const nodeIds = Array.from({ length: nodeCount }, (_, i) => `n${i + 1}`);
  const faults = planFaults(options.seed, nodeIds, options.durationMs);
  log(`verify seed ${options.seed}: ${nodeCount} nodes, ${options.durationMs / 1000} s of workload, ${faults.length} fault windows`);
  for (const fault of faults) log(`  planned ${describeFault(fault)}`);
  log(`  replay: ${replayCommand(options.seed, options.durationMs)}`);

  const violations: string[] = [];
  const report = (text: string) => {
    if (violations.length < VIOLATIONS_LISTED_MAX) violations.push(text);
    log(`VIOLATION ${text}`);
  };
  const cluster = await LocalCluster.start({
    nodes: nodeCount,
    replication: options.replication ?? 3,
    gossipIntervalMs: options.gossipIntervalMs ?? 200,
    replicaTimeoutMs: options.replicaTimeoutMs ?? 500,
  });
  const runner = new FaultRunner(cluster, log);
  try {
    await makeLww(cluster, LWW_BUCKET);
    const workload = new SetWorkload(
      cluster.nodes.map((n) => n.url),
      options.seed,
      { clients: options.clients ?? nodeCount, buckets: [SIBLINGS_BUCKET, LWW_BUCKET], keysPerBucket: options.keysPerBucket ?? 3, durationMs: options.durationMs, opsPerClientMax: 10_000, thinkMsMax: 30, attemptTimeoutMs: 2000, retries: 2 },
    );
    const abort = new AbortController();
    const faultsDone = runner.run(faults, Date.now(), abort.signal);
    try {
      await workload.run();
    } finally {
      abort.abort();
      await faultsDone;
    }
    log(`workload done: ${workload.stats.operations} operations, ${workload.stats.ok} ok, failures ${JSON.stringify(Object.fromEntries(workload.stats.failuresByCode))}`);

    await runner.undoAll();
    try {
      await cluster.heal(settleTimeoutMs);
      log('healed: converged, hint backlog 0 on every node');
    } catch (error) {
      report(`heal did not complete: ${(error as Error).message}`);
    }

    const ring = await cluster.ring('n1');
    const figures: Record<string, SetFigures> = { [SIBLINGS_BUCKET]: emptyFigures(), [LWW_BUCKET]: emptyFigures() };
    for (const bucket of [SIBLINGS_BUCKET, LWW_BUCKET]) {
      for (const key of keyNames(options.keysPerBucket ?? 3)) {
        const texts = await finalRead(cluster, bucket, key, settleTimeoutMs);
        if (texts === undefined) {
          report(`${bucket}/${key}: no r=all read succeeded within ${settleTimeoutMs} ms`);
          continue;
        }
        const verdict = judgeSet(workload.histories.get(`${bucket}/${key}`)!, texts);
        addVerdict(figures[bucket]!, verdict);
        if (bucket === SIBLINGS_BUCKET && verdict.lost.length > 0) report(`${bucket}/${key}: ${verdict.lost.length} acknowledged elements lost: ${verdict.lost.slice(0, 10).join(' ')}`);
        if (verdict.unexpected.length > 0) report(`${bucket}/${key}: elements no client wrote: ${verdict.unexpected.slice(0, 10).join(' ')}`);
        if (verdict.malformed > 0) report(`${bucket}/${key}: ${verdict.malformed} sibling values are not JSON string arrays`);
        const diverged = await waitReplicasEqual(cluster, ring, bucket, key, settleTimeoutMs);
        if (diverged !== undefined) report(`${bucket}/${key}: primary replicas did not converge: ${diverged}`);
      }
    }
    const result: VerifyResult = {
      seed: options.seed,
      ok: violations.length === 0,
      siblings: figures[SIBLINGS_BUCKET]!,
      lww: figures[LWW_BUCKET]!,
      workload: workload.stats,
      faults,
      violations,
      replay: replayCommand(options.seed, options.durationMs),
      elapsedMs: Date.now() - startedMs,
    };
    log(formatVerify(result));
    return result;
  } finally {
    await cluster.destroy();
  }
}

/** Sets a bucket's conflict mode to lww and waits until every node's ring carries it. */
async function makeLww(cluster: LocalCluster, bucket: string): Promise<void> {
  const json = { 'content-type': 'application/json' };
  const answer = await http(cluster.nodes[0]!.url, 'PUT', `/v1/buckets/${bucket}/props`, { body: JSON.stringify({ conflictMode: 'lww' }), headers: json });
  if (answer.status !== 200) throw new Error(`setting ${bucket} to lww failed: ${answer.status} ${answer.body}`);
  await waitFor(`every node to see ${bucket} in lww mode`, 10_000, async () => {
    for (const node of cluster.nodes) {
      const props = JSON.parse((await http(node.url, 'GET', `/v1/buckets/${bucket}/props`)).body) as { props?: { conflictMode?: string } };
      if (props.props?.conflictMode !== 'lww') return undefined;
    }
    return true;
  });
}

/** Every sibling's text of the key, read with r=all through any node, retried until `timeoutMs`. */
async function finalRead(cluster: LocalCluster, bucket: string, key: string, timeoutMs: number): Promise<string[] | undefined> {
  const client = new DynamoClient({ endpoints: cluster.nodes.map((n) => n.url), timeoutMs: 5000, retries: cluster.nodes.length });
  const deadlineMs = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        const result = await client.get(bucket, key, { r: 'all', resolveSiblings: false });
        return result.values.map((v) => v.value.toString('utf8'));
      } catch {
        if (Date.now() > deadlineMs) return undefined;
        await sleep(FINAL_READ_RETRY_MS);
      }
    }
  } finally {
    await client.close();
  }
}

/**
 * Waits until the key's primary replicas (local reads that repair nothing) hold equal objects;
 * undefined when they do, a description of the difference when `timeoutMs` passes first.
 */
async function waitReplicasEqual(cluster: LocalCluster, ring: RingView, bucket: string, key: string, timeoutMs: number): Promise<string | undefined> {
  const primaries = LocalCluster.primaries(ring, bucket, key);
  let last = '';
  try {
    await waitFor(`replicas of ${bucket}/${key} to converge`, timeoutMs, async () => {
      const objects = await Promise.all(primaries.map((id) => cluster.readReplica(id, bucket, key, ring.partitionCount)));
      const first = objects[0];
      const same = objects.every((o) => (o === undefined || first === undefined ? o === first : equalObjects(o, first)));
      last = primaries.map((id, i) => `${id} ${summary(objects[i])}`).join('; ');
      return same ? true : undefined;
    });
    return undefined;
  } catch {
    return last;
  }
}

function summary(object: VersionedObject | undefined): string {
  if (object === undefined) return 'absent';
  return `${object.siblings.length} siblings, ctx ${JSON.stringify(object.context)}`;
}

/** The run as a person reads it: status, Jepsen's figures per bucket, faults, violations, replay. */
export function formatVerify(result: VerifyResult): string {
  const figures = (name: string, f: SetFigures) =>
    `  ${name}: keys ${f.keys} total ${f.total} acknowledged ${f.acknowledged} lost ${f.lost} unexpected ${f.unexpected} recovered ${f.recovered} malformed ${f.malformed}`;
  const w = result.workload;
  const lines = [
    `verify seed ${result.seed}: ${result.ok ? 'ok' : 'FAILED'} in ${(result.elapsedMs / 1000).toFixed(1)} s`,
    `  operations ${w.operations} ok ${w.ok} failed ${w.failed} ${JSON.stringify(Object.fromEntries(w.failuresByCode))}; fault windows ${result.faults.length}`,
    figures(`siblings (${SIBLINGS_BUCKET})`, result.siblings),
    `${figures(`lww (${LWW_BUCKET})`, result.lww)} (lww loss is expected)`,
  ];
  for (const violation of result.violations) lines.push(`  violation: ${violation}`);
  lines.push(`  replay: ${result.replay}`);
  return lines.join('\n');
}
