/**
 * How background traffic grows with cluster size: gossip, liveness pings and anti-entropy bytes
 * per node per second at 3, 30 and 300 nodes, measured in the deterministic simulator (the
 * production membership, anti-entropy and coordinator code over the in-memory network, on a
 * virtual clock), so the figures are exact and repeatable rather than noisy.
 *
 * Bytes are the msgpack bodies the peer protocol would send (request + response); HTTP framing
 * adds roughly 200 bytes per call on the wire, which the report shows separately from the calls.
 *
 *   npm run bench:scale -- [--sizes 3,30,300] [--seconds 30] [--keys-per-node 20]
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_TREE_SHAPE } from '../node/src/core/tictac';
import { MemoryCluster } from '../node/src/cluster/memoryCluster';

const HTTP_FRAMING_BYTES_PER_CALL = 200;

interface Options {
  sizes: number[];
  seconds: number;
  keysPerNode: number;
  out: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { sizes: [3, 30, 300], seconds: 30, keysPerNode: 20, out: undefined };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--sizes':
        options.sizes = (value ?? '').split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 1 && n <= 1000);
        i++;
        break;
      case '--seconds':
        options.seconds = Math.min(600, Math.max(1, Number(value)));
        i++;
        break;
      case '--keys-per-node':
        options.keysPerNode = Math.min(1000, Math.max(0, Number(value)));
        i++;
        break;
      case '--out':
        options.out = value;
        i++;
        break;
      default:
        throw new Error(`unknown option ${argv[i]}; see the header of bench/scaleCost.ts`);
    }
  }
  if (options.sizes.length === 0) throw new Error('--sizes needs a comma list of node counts from 1 to 1000');
  return options;
}

/** Enough partitions that every node owns some at every size measured (Q >= 3 x nodes). */
function partitionsFor(nodes: number): number {
  let q = 64;
  while (q < nodes * 3) q *= 2;
  return q;
}

interface Row {
  nodes: number;
  partitions: number;
  perMethod: Map<string, { callsPerNodeSecond: number; bytesPerNodeSecond: number }>;
  totalBytesPerNodeSecond: number;
  totalCallsPerNodeSecond: number;
  ringBytes: number;
  /** Virtual time until a ring change made at one node had reached every node. */
  convergenceMs: number;
  wallSeconds: number;
}

async function measure(nodes: number, options: Options): Promise<Row> {
  const started = process.hrtime.bigint();
  const partitions = partitionsFor(nodes);
  const cluster = new MemoryCluster({ nodes, partitionCount: partitions, replicationFactor: 3, seed: 42, antiEntropyIntervalMs: 10_000, treeShape: DEFAULT_TREE_SHAPE });
  await cluster.start();
  // Some data, so anti-entropy trees are not empty; writes go through the real coordinator.
  for (let i = 0; i < nodes * options.keysPerNode; i++) {
    const coordinator = cluster.nodes[i % nodes]!.coordinator;
    await coordinator.put({ bucket: 'b', key: `k${i}`, value: { value: Buffer.alloc(100, 1), contentType: 'application/octet-stream', lastModifiedMs: 1, deleted: false }, context: {}, write: { w: 2, dw: 0, pw: 0 }, conflictMode: 'siblings' });
  }
  // Let the ring settle everywhere before counting: the joins' gossip is not steady-state cost.
  await cluster.advance(20_000);
  cluster.network.resetTraffic();
  await cluster.advance(options.seconds * 1000);
  const perMethod = new Map<string, { callsPerNodeSecond: number; bytesPerNodeSecond: number }>();
  let totalBytes = 0;
  let totalCalls = 0;
  for (const [method, t] of [...cluster.network.traffic.entries()].sort()) {
    const bytes = t.requestBytes + t.responseBytes;
    totalBytes += bytes;
    totalCalls += t.calls;
    perMethod.set(method, { callsPerNodeSecond: t.calls / nodes / options.seconds, bytesPerNodeSecond: bytes / nodes / options.seconds });
  }
  // How long a ring change takes to reach every node: one bucket property set at the claimant.
  const target = (await cluster.nodes[0]!.membership.handleBucketProps('scale-cost', { w: 2 })).version;
  let convergenceMs = 0;
  while (convergenceMs < 120_000 && cluster.nodes.some((n) => n.membership.ring().version < target)) {
    await cluster.advance(100);
    convergenceMs += 100;
  }
  const { packMessage } = await import('../node/src/transport/peerMessages');
  const ringBytes = packMessage(cluster.nodes[0]!.membership.ring()).length;
  for (const node of cluster.nodes) {
    node.membership.stop();
    await node.antiEntropy.stop();
    node.hints.stop();
  }
  return {
    nodes,
    partitions,
    perMethod,
    totalBytesPerNodeSecond: totalBytes / nodes / options.seconds,
    totalCallsPerNodeSecond: totalCalls / nodes / options.seconds,
    ringBytes,
    convergenceMs,
    wallSeconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

function report(rows: Row[], options: Options): string {
  const methods = [...new Set(rows.flatMap((r) => [...r.perMethod.keys()]))].sort();
  const lines = [
    `# Background traffic per node by cluster size (simulator, ${options.seconds} virtual seconds after a 20 s settle)`,
    '',
    `N=3, gossip every 1 s, anti-entropy every 10 s, tree ${DEFAULT_TREE_SHAPE.branchCount}x${DEFAULT_TREE_SHAPE.leavesPerBranch}, ${options.keysPerNode} keys of 100 B per node, no client load while measuring.`,
    'Bytes are msgpack bodies (request + response); add about 200 B of HTTP framing per call on the wire.',
    '',
    `| nodes | Q | ring state | change reaches all | ${methods.map((m) => `${m} calls/s | ${m} bytes/s`).join(' | ')} | all calls/s | all bytes/s | + HTTP framing |`,
    `|---|---|---|---|${methods.map(() => '---|---|').join('')}---|---|---|`,
  ];
  for (const r of rows) {
    const cells = methods.map((m) => {
      const t = r.perMethod.get(m);
      return t === undefined ? '0 | 0' : `${t.callsPerNodeSecond.toFixed(1)} | ${kib(t.bytesPerNodeSecond)}`;
    });
    lines.push(`| ${r.nodes} | ${r.partitions} | ${kib(r.ringBytes)} | ${(r.convergenceMs / 1000).toFixed(1)} s | ${cells.join(' | ')} | ${r.totalCallsPerNodeSecond.toFixed(1)} | ${kib(r.totalBytesPerNodeSecond)} | ${kib(r.totalBytesPerNodeSecond + r.totalCallsPerNodeSecond * HTTP_FRAMING_BYTES_PER_CALL)} |`);
  }
  lines.push('', `Simulated in ${rows.map((r) => `${r.nodes} nodes: ${r.wallSeconds.toFixed(0)} s`).join(', ')} of wall time.`);
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const rows: Row[] = [];
  for (const nodes of options.sizes) {
    process.stderr.write(`scale cost: ${nodes} nodes...\n`);
    rows.push(await measure(nodes, options));
    process.stderr.write(`scale cost: ${nodes} nodes done in ${rows.at(-1)!.wallSeconds.toFixed(0)} s\n`);
  }
  const text = report(rows, options);
  process.stdout.write(text);
  if (options.out !== undefined) {
    mkdirSync(join(options.out, '..'), { recursive: true });
    writeFileSync(options.out, text);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
