/**
 * Test helper: a small real cluster for the client's routing tests, built from startNode
 * (nodeProcess.ts) and the nodes' HTTP API only (join, ring, metrics), as a user would build it.
 * Every wait is bounded; the caller stops the nodes (NodeProcess.stop) in afterAll.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startNode, type NodeProcess } from './nodeProcess';

const HTTP_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 100;
const SETTLE_TIMEOUT_MS = 60_000;

/** Flags that make membership quick to notice changes on a busy test machine. */
export function clusterArgs(options: { replication: number; partitions: number }): string[] {
  return ['--replication', String(options.replication), '--partitions', String(options.partitions), '--gossip-interval-ms', '200', '--replica-timeout-ms', '1000', '--log-level', 'warn'];
}

export interface RingAnswer {
  readonly version: number;
  readonly partitionCount: number;
  readonly members: readonly { readonly id: string; readonly state: string; readonly up: boolean; readonly clientUrl: string }[];
  readonly partitions: readonly { readonly partition: number; readonly owners: readonly string[] }[];
  readonly pending: unknown;
}

async function fetchText(url: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  return { status: response.status, text: await response.text() };
}

export async function ringOf(node: NodeProcess): Promise<RingAnswer> {
  const answer = await fetchText(`${node.url}/v1/ring`);
  if (answer.status !== 200) throw new Error(`GET /v1/ring on ${node.url}: ${answer.status} ${answer.text}`);
  return JSON.parse(answer.text) as RingAnswer;
}

/** Tells `node` to join the cluster of `seed`, waiting (on the node) for any change still streaming. */
export async function join(node: NodeProcess, seed: NodeProcess): Promise<void> {
  const answer = await fetchText(`${node.url}/v1/admin/join?waitMs=30000`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ seed: `127.0.0.1:${seed.peerPort}` }),
  });
  if (answer.status !== 200) throw new Error(`join of ${node.url} answered ${answer.status}: ${answer.text}`);
}

/**
 * Waits until every node in `nodes` holds the same ring version with no change pending, lists
 * exactly `memberIds` as normal members, and judges each of them up.
 */
export async function waitSettled(nodes: readonly NodeProcess[], memberIds: readonly string[], timeoutMs = SETTLE_TIMEOUT_MS): Promise<RingAnswer> {
  const attemptsMax = Math.ceil(timeoutMs / POLL_INTERVAL_MS);
  let problem = 'not asked yet';
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    try {
      const rings = await Promise.all(nodes.map((node) => ringOf(node)));
      const settled = rings.every((ring) => {
        const normal = ring.members.filter((m) => m.state === 'normal');
        return ring.version === rings[0]!.version && ring.pending === null && normal.length === memberIds.length && memberIds.every((id) => normal.some((m) => m.id === id && m.up));
      });
      if (settled) return rings[0]!;
      problem = `versions ${rings.map((r) => r.version).join(', ')}`;
    } catch (error) {
      problem = (error as Error).message;
    }
    await sleep(POLL_INTERVAL_MS);
  }
  throw new Error(`the cluster did not settle within ${timeoutMs} ms: ${problem}`);
}

/** Starts `count` nodes n1..n<count> and joins n2.. to n1; resolves once they agree on one ring. */
export async function startCluster(count: number, options: { replication: number; partitions: number }): Promise<NodeProcess[]> {
  const nodes: NodeProcess[] = [];
  try {
    for (let i = 1; i <= count; i++) nodes.push(await startNode({ nodeId: `n${i}`, extraArgs: clusterArgs(options) }));
    for (const node of nodes.slice(1)) await join(node, nodes[0]!);
    await waitSettled(nodes, nodes.map((_, i) => `n${i + 1}`));
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw error;
  }
  return nodes;
}

/** Waits until every node in `observers` judges member `id` down. */
export async function waitSeenDown(observers: readonly NodeProcess[], id: string, timeoutMs = 15_000): Promise<void> {
  const attemptsMax = Math.ceil(timeoutMs / POLL_INTERVAL_MS);
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    const rings = await Promise.all(observers.map((node) => ringOf(node)));
    if (rings.every((ring) => ring.members.find((m) => m.id === id)?.up === false)) return;
    await sleep(POLL_INTERVAL_MS);
  }
  throw new Error(`${id} was not seen down within ${timeoutMs} ms`);
}

/** The sum of a Prometheus counter over the series whose labels contain every one of `labelParts`. */
export async function metricSum(node: NodeProcess, name: string, labelParts: readonly string[] = []): Promise<number> {
  const answer = await fetchText(`${node.url}/metrics`);
  let total = 0;
  for (const line of answer.text.split('\n')) {
    if (!line.startsWith(`${name} `) && !line.startsWith(`${name}{`)) continue;
    if (labelParts.every((part) => line.includes(part))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** Key requests (GET, PUT, DELETE) this node has answered on its client port. */
export async function keyRequestsAnswered(node: NodeProcess): Promise<number> {
  let total = 0;
  for (const operation of ['get', 'put', 'delete']) total += await metricSum(node, 'dynamokv_requests_total', [`operation="${operation}"`]);
  return total;
}
