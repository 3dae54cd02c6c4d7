/**
 * The pure half of `dynamokv dev`: validated options, each node's command line, and the banner.
 * The process handling lives in dev.ts.
 */
import * as path from 'node:path';
import { UsageError, integerOption, type OptionValues } from './args';

export interface DevOptions {
  readonly nodes: number;
  readonly dataDir: string;
  readonly portBase: number;
  readonly peerPortBase: number;
  readonly partitions: number | undefined;
  /** Undefined for a single node unless given, so a node without cluster flags still starts. */
  readonly replication: number | undefined;
  readonly r: number | undefined;
  readonly w: number | undefined;
  readonly quiet: boolean;
  readonly nodeBin: string;
  readonly readyTimeoutMs: number;
  readonly stopTimeoutMs: number;
}

export interface DevNode {
  readonly id: string;
  readonly port: number;
  readonly peerPort: number;
  readonly url: string;
  readonly dataDir: string;
}

/** Beyond this many nodes the ports and the 2-core machines this runs on stop making sense. */
export const DEV_NODES_MAX = 16;

/** `defaultNodeBin` is the compiled node entry relative to the compiled CLI. */
export function devOptionsFrom(opts: OptionValues, cwd: string, defaultNodeBin: string): DevOptions {
  const nodes = integerOption(opts.nodes, 'nodes', 'dev', 1) ?? 3;
  if (nodes > DEV_NODES_MAX) throw new UsageError(`--nodes must be at most ${DEV_NODES_MAX}`, 'dev');
  const portBase = integerOption(opts['port-base'], 'port-base', 'dev', 1) ?? 8080;
  const peerPortBase = integerOption(opts['peer-port-base'], 'peer-port-base', 'dev', 1) ?? portBase + 1000;
  for (const [name, base] of [['port-base', portBase], ['peer-port-base', peerPortBase]] as const) {
    if (base + nodes - 1 > 65535) throw new UsageError(`--${name} ${base} leaves no room for ${nodes} nodes below port 65536`, 'dev');
  }
  if (peerPortBase < portBase + nodes && portBase < peerPortBase + nodes) throw new UsageError('client and peer port ranges overlap; choose another --peer-port-base', 'dev');
  const partitions = integerOption(opts.partitions, 'partitions', 'dev', 1);
  if (partitions !== undefined && (partitions & (partitions - 1)) !== 0) throw new UsageError(`--partitions must be a power of two, got ${partitions}`, 'dev');
  const replicationGiven = integerOption(opts.replication, 'replication', 'dev', 1);
  if (replicationGiven !== undefined && replicationGiven > nodes) throw new UsageError(`--replication ${replicationGiven} needs at least that many --nodes (got ${nodes})`, 'dev');
  const replication = replicationGiven ?? (nodes > 1 ? Math.min(3, nodes) : undefined);
  const r = integerOption(opts.r, 'r', 'dev', 1);
  const w = integerOption(opts.w, 'w', 'dev', 1);
  const n = replication ?? 1;
  if (r !== undefined && replication !== undefined && r > n) throw new UsageError(`--r ${r} exceeds the replication factor ${n}`, 'dev');
  if (w !== undefined && replication !== undefined && w > n) throw new UsageError(`--w ${w} exceeds the replication factor ${n}`, 'dev');
  const dataDir = path.resolve(cwd, typeof opts['data-dir'] === 'string' ? opts['data-dir'] : 'data');
  const nodeBin = path.resolve(cwd, typeof opts['node-bin'] === 'string' ? opts['node-bin'] : defaultNodeBin);
  const readyTimeoutMs = integerOption(opts['ready-timeout-ms'], 'ready-timeout-ms', 'dev', 1) ?? 30_000;
  return { nodes, dataDir, portBase, peerPortBase, partitions, replication, r, w, quiet: opts.quiet === true, nodeBin, readyTimeoutMs, stopTimeoutMs: 10_000 };
}

export function devNodes(options: DevOptions): DevNode[] {
  return Array.from({ length: options.nodes }, (_, index) => {
    const id = `n${index + 1}`;
    const port = options.portBase + index;
    return { id, port, peerPort: options.peerPortBase + index, url: `http://127.0.0.1:${port}`, dataDir: path.join(options.dataDir, id) };
  });
}

/** The seed every node is given: node 1's peer address. */
export function seedAddress(options: DevOptions): string {
  return `127.0.0.1:${options.peerPortBase}`;
}

/**
 * The node's command line (after the node binary). Cluster flags (--peer-port, --seeds) are
 * passed to a multi-node cluster always, and to a single node only when the node says it knows
 * them (`clusterFlags`), so `dev --nodes 1` keeps working with a single-node-only build.
 */
export function nodeArgs(options: DevOptions, node: DevNode, clusterFlags: boolean): string[] {
  const args = [options.nodeBin, '--node-id', node.id, '--host', '127.0.0.1', '--port', String(node.port), '--data-dir', node.dataDir];
  if (clusterFlags || options.nodes > 1) args.push('--peer-port', String(node.peerPort), '--seeds', seedAddress(options));
  if (options.partitions !== undefined) args.push('--partitions', String(options.partitions));
  if (options.replication !== undefined) args.push('--replication', String(options.replication));
  if (options.r !== undefined) args.push('--r', String(options.r));
  if (options.w !== undefined) args.push('--w', String(options.w));
  return args;
}

/**
 * How the user can run this CLI again from `cwd`: `node <path of the running script>`, relative
 * when it lies below cwd. (`npx dynamokv` does not work from a clone: npm links no bin of the
 * project itself.)
 */
export function cliInvocation(scriptPath: string | undefined, cwd: string): string {
  if (scriptPath === undefined) return 'dynamokv';
  const relative = path.relative(cwd, scriptPath);
  return `node ${relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? scriptPath : relative}`;
}

export function banner(options: DevOptions, nodes: readonly DevNode[], pids: readonly (number | undefined)[], clustered: boolean, cli = 'dynamokv'): string {
  const endpoints = nodes.map((n) => n.url).join(',');
  const first = nodes[0]!;
  const lines = [
    '',
    `dynamokv local cluster is up: ${nodes.length} node${nodes.length === 1 ? '' : 's'}${options.replication === undefined ? '' : `, N=${options.replication}`}${options.r === undefined ? '' : ` R=${options.r}`}${options.w === undefined ? '' : ` W=${options.w}`}`,
    ...nodes.map((n, i) => `  ${n.id}  ${n.url}  peer 127.0.0.1:${n.peerPort}  pid ${pids[i] ?? '?'}  data ${n.dataDir}`),
    nodes.length > 1 && !clustered ? '  (this node build has no cluster support yet: the nodes run standalone, not joined)' : '',
    '',
    'Try it (in another terminal):',
    `  ${cli} put demo hello "world"${first.port === 8080 ? '' : ` -e ${first.url}`}`,
    `  ${cli} get demo hello${first.port === 8080 ? '' : ` -e ${first.url}`}`,
    `  ${cli} ring${first.port === 8080 ? '' : ` -e ${first.url}`}`,
    `  export DYNAMOKV_ENDPOINTS=${endpoints}   # fail over between all nodes`,
    '',
    `Data lives in ${options.dataDir}; ${options.quiet ? `node logs go to ${path.join(options.dataDir, 'logs')}` : 'node logs follow, prefixed with the node id'}.`,
    'Press ctrl-c to stop every node.',
    '',
  ];
  return `${lines.filter((l, i) => l !== '' || lines[i - 1] !== '').join('\n')}\n`;
}
