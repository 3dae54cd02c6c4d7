/**
 * A local dynamokv cluster for the benchmarks: N node processes (the compiled dist/ build) on
 * 127.0.0.1 with free ports and their own data directories, joined into one ring the way local
 * mode does it: every node knows node 1 as its seed, and nodes 2..N are told to join through
 * POST /v1/admin/join. The cluster is ready when every node's GET /v1/members shows all N members
 * up and in state normal, at one ring version.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Target } from './measure';
import { freePort } from './processes';
import { HOST, startDynamoNode, type RunningServer } from './servers';

const HTTP_TIMEOUT_MS = 5_000;
const CONVERGE_TIMEOUT_MS_DEFAULT = 30_000;
const CONVERGE_POLL_INTERVAL_MS = 200;
const PORT_PROBES_MAX = 100;

export interface ClusterOptions {
  nodes: number;
  /** Each node gets its own directory below this one. */
  dataDir: string;
  partitions: number;
  replication: number;
  r: number;
  w: number;
  /** Extra flags for every node, e.g. ['--log-level', 'warn']. */
  extraArgs?: string[];
  /** Node.js flags for some nodes by id, e.g. { n1: ['--cpu-prof'] }. */
  nodeFlags?: Record<string, string[]>;
  convergeTimeoutMs?: number;
}

export interface RunningCluster {
  readonly target: Target;
  readonly nodes: readonly RunningServer[];
}

interface MembersView {
  ringVersion: number;
  members: { id: string; state: string; up: boolean }[];
}

/** `count` distinct free ports (two probes can return the same port while nothing binds it). */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let probe = 0; ports.size < count && probe < PORT_PROBES_MAX; probe++) ports.add(await freePort(HOST));
  if (ports.size < count) throw new Error(`found only ${ports.size} of ${count} free ports`);
  return [...ports];
}

async function requestJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    // Not JSON: keep the text for the error message.
  }
  return { status: response.status, body };
}

function isMembersView(value: unknown): value is MembersView {
  if (typeof value !== 'object' || value === null) return false;
  const view = value as Partial<MembersView>;
  return typeof view.ringVersion === 'number' && Array.isArray(view.members);
}

/** Why the cluster is not converged yet, or undefined when it is. */
async function convergenceProblem(nodes: readonly RunningServer[], ids: readonly string[]): Promise<string | undefined> {
  const versions = new Set<number>();
  for (const node of nodes) {
    const answer = await requestJson(`${node.baseUrl}/v1/members`);
    if (answer.status !== 200 || !isMembersView(answer.body)) return `${node.label}: GET /v1/members answered ${answer.status}`;
    versions.add(answer.body.ringVersion);
    for (const id of ids) {
      const member = answer.body.members.find((m) => m.id === id);
      if (member === undefined) return `${node.label} does not list ${id} yet`;
      if (member.state !== 'normal' || !member.up) return `${node.label} sees ${id} ${member.state}, ${member.up ? 'up' : 'down'}`;
    }
  }
  return versions.size === 1 ? undefined : `ring versions differ: ${[...versions].join(', ')}`;
}

async function waitConverged(nodes: readonly RunningServer[], ids: readonly string[], timeoutMs: number): Promise<void> {
  const attemptsMax = Math.ceil(timeoutMs / CONVERGE_POLL_INTERVAL_MS);
  let problem: string | undefined = 'not asked yet';
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    try {
      problem = await convergenceProblem(nodes, ids);
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
    }
    if (problem === undefined) return;
    await sleep(CONVERGE_POLL_INTERVAL_MS);
  }
  throw new Error(`cluster did not converge within ${timeoutMs} ms: ${problem}`);
}

const JOIN_ATTEMPTS_MAX = 600;
const JOIN_RETRY_INTERVAL_MS = 200;

/**
 * Starts the nodes one after another, pushing each into `started` as soon as it runs (so the
 * caller's clean-up stops it even when a later step fails), joins them and waits for convergence.
 */
export async function startDynamoCluster(repoRoot: string, options: ClusterOptions, started: RunningServer[]): Promise<RunningCluster> {
  if (options.nodes < 1) throw new Error('a cluster needs at least one node');
  const ports = await distinctFreePorts(2 * options.nodes);
  const ids = Array.from({ length: options.nodes }, (_, index) => `n${index + 1}`);
  const seedPeerPort = ports[options.nodes] ?? 0;
  const seed = `${HOST}:${seedPeerPort}`;
  const clusterArgs = [
    '--partitions', String(options.partitions),
    '--replication', String(options.replication),
    '--r', String(options.r),
    '--w', String(options.w),
    '--seeds', seed,
    ...(options.extraArgs ?? []),
  ];
  const nodes: RunningServer[] = [];
  for (const [index, nodeId] of ids.entries()) {
    const node = await startDynamoNode(repoRoot, {
      nodeId,
      dataDir: path.join(options.dataDir, nodeId),
      port: ports[index],
      peerPort: ports[options.nodes + index],
      extraArgs: clusterArgs,
      nodeFlags: options.nodeFlags?.[nodeId],
    });
    nodes.push(node);
    started.push(node);
  }
  // One join at a time: each goes through the claimant, which changes the ring serially anyway.
  // A join that arrives while the previous one still streams its partitions gets 409: retry.
  for (const node of nodes.slice(1)) {
    for (let attempt = 1; ; attempt++) {
      const answer = await requestJson(`${node.baseUrl}/v1/admin/join`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ seed }),
      });
      if (answer.status === 200) break;
      if (answer.status !== 409 || attempt >= JOIN_ATTEMPTS_MAX) throw new Error(`join of ${node.label} answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`);
      await sleep(JOIN_RETRY_INTERVAL_MS);
    }
  }
  await waitConverged(nodes, ids, options.convergeTimeoutMs ?? CONVERGE_TIMEOUT_MS_DEFAULT);
  const target: Target = {
    label: `dynamokv ${options.nodes} nodes`,
    baseUrls: nodes.map((n) => n.baseUrl),
    processes: nodes.map((n) => n.process),
  };
  return { target, nodes };
}
