/**
 * The systems the YCSB suite compares, each started fresh as separate processes on 127.0.0.1 with
 * its data in a temp directory, and stopped by process id afterwards:
 *
 * - bare:    the node:http ceiling (bench/lib/bareServer.ts), which answers without doing any work;
 * - node:    one dynamokv node;
 * - cluster: a local 3-node dynamokv cluster, N=3 R=2 W=2 (bench/lib/cluster.ts);
 * - etcd:    a 3-member etcd cluster (Debian etcd-server), driven through its JSON gateway; Raft
 *            fsyncs its WAL for every committed batch of writes;
 * - redis:   one redis-server without persistence, the single-threaded in-memory ceiling.
 *
 * The peers run only when their binary is installed; otherwise `unavailableReason` says why.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startDynamoCluster } from '../lib/cluster';
import { freePort, startProcess, waitForHttp, type ManagedProcess } from '../lib/processes';
import { HOST, startBareServer, startDynamoNode, type RunningServer } from '../lib/servers';
import { DynamoHttpClient, EtcdClient, RedisClient, type KvClient } from './clients';

export type TargetName = 'bare' | 'node' | 'cluster' | 'etcd' | 'redis';
export const TARGET_NAMES: readonly TargetName[] = ['bare', 'node', 'cluster', 'etcd', 'redis'];

export const TARGET_LABELS: Readonly<Record<TargetName, string>> = {
  bare: 'bare node:http',
  node: 'dynamokv 1 node',
  cluster: 'dynamokv 3 nodes N3/R2/W2',
  etcd: 'etcd 3 members',
  redis: 'redis',
};

const ETCD_MEMBERS = 3;
const PEER_READY_TIMEOUT_MS = 30_000;

export interface StartedTarget {
  readonly name: TargetName;
  readonly label: string;
  /** What was started, for the report (versions, flags). */
  readonly description: string;
  readonly processes: readonly ManagedProcess[];
  /**
   * A fresh client with about `connections` connections in all, whose requests fail after
   * `timeoutMs` without an answer (the Redis client has no timeout).
   */
  openClient(connections: number, timeoutMs: number): Promise<KvClient>;
}

export interface TargetContext {
  repoRoot: string;
  /** Each target gets its own directory below this one. */
  dataDir: string;
  valueBytes: number;
  nodeArgs: string[];
  /** Every process is pushed here as soon as it runs, so clean-up stops it even on a failed start. */
  started: ManagedProcess[];
}

function binaryPath(name: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function firstLine(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]?.trim() ?? '';
  } catch {
    return 'version unknown';
  }
}

/** Why a target cannot run on this machine, or undefined when it can. */
export function unavailableReason(name: TargetName): string | undefined {
  if (name === 'etcd' && binaryPath('etcd') === undefined) return 'etcd is not installed (apt-get install -y etcd-server etcd-client)';
  if (name === 'redis' && binaryPath('redis-server') === undefined) return 'redis-server is not installed (apt-get install -y redis-server)';
  return undefined;
}

function httpTarget(name: TargetName, description: string, servers: readonly RunningServer[]): StartedTarget {
  const baseUrls = servers.map((s) => s.baseUrl);
  return {
    name,
    label: TARGET_LABELS[name],
    description,
    processes: servers.map((s) => s.process),
    openClient: async (connections, timeoutMs) => new DynamoHttpClient(baseUrls, connections, timeoutMs),
  };
}

async function startEtcd(context: TargetContext): Promise<StartedTarget> {
  const clientPorts: number[] = [];
  const peerPorts: number[] = [];
  const used = new Set<number>();
  while (clientPorts.length + peerPorts.length < 2 * ETCD_MEMBERS) {
    const port = await freePort(HOST);
    if (used.has(port)) continue;
    used.add(port);
    if (clientPorts.length < ETCD_MEMBERS) clientPorts.push(port);
    else peerPorts.push(port);
  }
  const names = Array.from({ length: ETCD_MEMBERS }, (_, i) => `m${i + 1}`);
  const initialCluster = names.map((n, i) => `${n}=http://${HOST}:${peerPorts[i]}`).join(',');
  const processes: ManagedProcess[] = [];
  for (const [i, name] of names.entries()) {
    const client = `http://${HOST}:${clientPorts[i]}`;
    const peer = `http://${HOST}:${peerPorts[i]}`;
    const proc = startProcess({
      name: `etcd-${name}`,
      command: 'etcd',
      args: [
        '--name', name, '--data-dir', path.join(context.dataDir, 'etcd', name),
        '--listen-client-urls', client, '--advertise-client-urls', client,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'new',
        '--initial-cluster-token', `ycsb-${process.pid}`,
        '--quota-backend-bytes', String(8 * 2 ** 30), '--logger', 'zap', '--log-level', 'warn',
      ],
    });
    processes.push(proc);
    context.started.push(proc);
  }
  const baseUrls = clientPorts.map((port) => `http://${HOST}:${port}`);
  // /health answers 200 only once the member has a leader and can serve.
  await Promise.all(processes.map((proc, i) => waitForHttp(proc, `${baseUrls[i]}/health`, PEER_READY_TIMEOUT_MS)));
  return {
    name: 'etcd',
    label: TARGET_LABELS.etcd,
    description: `${firstLine('etcd', ['--version'])}, ${ETCD_MEMBERS} members, defaults (WAL fsync), JSON gateway, linearizable ranges`,
    processes,
    openClient: async (connections, timeoutMs) => new EtcdClient(baseUrls, connections, timeoutMs),
  };
}

async function startRedis(context: TargetContext): Promise<StartedTarget> {
  const port = await freePort(HOST);
  mkdirSync(context.dataDir, { recursive: true });
  const proc = startProcess({
    name: 'redis',
    command: 'redis-server',
    args: ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', context.dataDir],
  });
  context.started.push(proc);
  // Ready once a connection answers PING; retried for a bounded time.
  const deadline = Date.now() + PEER_READY_TIMEOUT_MS;
  for (;;) {
    try {
      const probe = await RedisClient.open(HOST, port, 1);
      await probe.read('ping');
      await probe.close();
      break;
    } catch (error) {
      if (proc.hasExited()) throw new Error(`redis-server exited before it was ready:\n${proc.recentOutput()}`, { cause: error });
      if (Date.now() > deadline) throw new Error(`redis-server not ready after ${PEER_READY_TIMEOUT_MS} ms`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    name: 'redis',
    label: TARGET_LABELS.redis,
    description: `${firstLine('redis-server', ['--version'])}; no persistence (--save "" --appendonly no)`,
    processes: [proc],
    openClient: (connections) => RedisClient.open(HOST, port, connections),
  };
}

export async function startTarget(name: TargetName, context: TargetContext): Promise<StartedTarget> {
  const servers: RunningServer[] = [];
  const track = (server: RunningServer): RunningServer => {
    servers.push(server);
    context.started.push(server.process);
    return server;
  };
  switch (name) {
    case 'bare':
      track(await startBareServer(context.repoRoot, context.valueBytes));
      return httpTarget(name, 'node:http, GET answers a fixed body, PUT drains and answers 204', servers);
    case 'node':
      track(await startDynamoNode(context.repoRoot, { nodeId: 'y1', dataDir: path.join(context.dataDir, 'y1'), extraArgs: context.nodeArgs }));
      return httpTarget(name, `one dynamokv node (defaults${context.nodeArgs.length > 0 ? `, ${context.nodeArgs.join(' ')}` : ''})`, servers);
    case 'cluster': {
      const started: RunningServer[] = [];
      try {
        await startDynamoCluster(context.repoRoot, {
          nodes: 3, dataDir: path.join(context.dataDir, 'cluster'), partitions: 64, replication: 3, r: 2, w: 2, extraArgs: context.nodeArgs,
        }, started);
      } finally {
        started.forEach(track);
      }
      return httpTarget(name, '3 dynamokv nodes, N=3 R=2 W=2, Q=64, requests spread over the nodes', servers);
    }
    case 'etcd':
      return startEtcd(context);
    case 'redis':
      return startRedis(context);
  }
}
