/**
 * Starting the two kinds of server the benchmarks compare, as separate processes on loopback:
 * the bare node:http ceiling (bench/lib/bareServer.ts) and a dynamokv node (dist/node/src/main.js).
 * Both are started with this process's own Node binary, so they run on the pinned Node 24.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { freePort, startProcess, waitForHttp, type ManagedProcess } from './processes';

export const HOST = '127.0.0.1';

export interface RunningServer {
  label: string;
  baseUrl: string;
  process: ManagedProcess;
}

export async function startBareServer(repoRoot: string, valueBytes: number): Promise<RunningServer> {
  const port = await freePort(HOST);
  const script = path.join(repoRoot, 'dist', 'bench', 'lib', 'bareServer.js');
  const proc = startProcess({
    name: 'bare',
    command: process.execPath,
    args: [script, '--host', HOST, '--port', String(port), '--value-bytes', String(valueBytes)],
    cwd: repoRoot,
  });
  const baseUrl = `http://${HOST}:${port}`;
  await waitForHttp(proc, `${baseUrl}/`);
  return { label: 'bare node:http', baseUrl, process: proc };
}

/**
 * The replication floor: `count` bare servers, each fanning every client request out to the next
 * `replication - 1` of them and answering after `acks` (bench/lib/bareServer.ts --peers).
 */
export async function startBareFanOut(repoRoot: string, valueBytes: number, count: number, acks: number, replication = count): Promise<RunningServer[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort(HOST));
  const script = path.join(repoRoot, 'dist', 'bench', 'lib', 'bareServer.js');
  const servers: RunningServer[] = [];
  for (const [index, port] of ports.entries()) {
    // Like a ring with N replicas: each server's peers are the next N-1 servers.
    const peerCount = Math.min(count, replication) - 1;
    const peers = Array.from({ length: peerCount }, (_, i) => `${HOST}:${ports[(index + 1 + i) % count]}`);
    const proc = startProcess({
      name: `fanout${index + 1}`,
      command: process.execPath,
      args: [script, '--host', HOST, '--port', String(port), '--value-bytes', String(valueBytes), '--peers', peers.join(','), '--acks', String(acks)],
      cwd: repoRoot,
    });
    servers.push({ label: `bare fan-out x${count}`, baseUrl: `http://${HOST}:${port}`, process: proc });
  }
  for (const server of servers) await waitForHttp(server.process, `${server.baseUrl}/replica`);
  return servers;
}

export interface DynamoNodeOptions {
  nodeId: string;
  dataDir: string;
  /** Extra flags for the node, e.g. ['--log-level', 'warn']. */
  extraArgs?: string[];
  /** Flags for Node.js itself, placed before the script, e.g. ['--cpu-prof']. */
  nodeFlags?: string[];
  port?: number;
  peerPort?: number;
}

export function dynamoMainPath(repoRoot: string): string {
  return path.join(repoRoot, 'dist', 'node', 'src', 'main.js');
}

export async function startDynamoNode(repoRoot: string, options: DynamoNodeOptions): Promise<RunningServer> {
  const main = dynamoMainPath(repoRoot);
  if (!existsSync(main)) throw new Error(`${path.relative(repoRoot, main)} is missing; build first (make build)`);
  const port = options.port ?? (await freePort(HOST));
  let peerPort = options.peerPort ?? (await freePort(HOST));
  // Two separate probes can return the same port if nothing binds in between; ask again then.
  for (let attempt = 0; peerPort === port && attempt < 10; attempt++) peerPort = await freePort(HOST);
  const args = [
    ...(options.nodeFlags ?? []),
    main,
    '--node-id', options.nodeId,
    '--host', HOST,
    '--port', String(port),
    '--peer-port', String(peerPort),
    '--data-dir', options.dataDir,
    ...(options.extraArgs ?? []),
  ];
  const proc = startProcess({ name: options.nodeId, command: process.execPath, args, cwd: repoRoot });
  const baseUrl = `http://${HOST}:${port}`;
  await waitForHttp(proc, `${baseUrl}/readyz`, 30_000);
  return { label: `dynamokv ${options.nodeId}`, baseUrl, process: proc };
}
