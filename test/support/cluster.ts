/**
 * A real dynamokv cluster for multi-process tests: N node processes (the compiled dist/ build) on
 * 127.0.0.1 with their own free ports and temporary RocksDB directories, joined into one ring.
 *
 * Three ways to look at a replica, none of which changes another replica:
 * - `readReplica` calls the node's peer `read` method: a local read of its own storage, never
 *   coordinated, so no read repair is triggered anywhere;
 * - `storedObjects` opens a *stopped* node's data directory with the real storage code
 *   (RocksDbEngine + ObjectStore) and lists every object and hint it holds;
 * - the client API (`http`) for what a user sees.
 *
 * Every process is tracked by nodeProcess.ts; `destroy()` (call it in afterAll) SIGKILLs whatever
 * is still running and removes the directory, whether the test passed or not.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { partitionOf } from '../../node/src/core/partition';
import type { VersionedObject } from '../../node/src/core/version';
import { decodeDataKey, decodeHintKey, allHintsRange } from '../../node/src/storage/keys';
import { decodeObject } from '../../node/src/storage/objectCodec';
import { ObjectStore } from '../../node/src/storage/objectStore';
import { RocksDbEngine } from '../../node/src/storage/rocksdb';
import { HttpPeerTransport } from '../../node/src/transport/peerClient';
import { NodeProcess, ensureBuilt, freePort } from './nodeProcess';

export interface ClusterOptions {
  readonly nodes: number;
  /** N; default 3. */
  readonly replication?: number;
  /** Q; default 64 (small rings plan quickly and are all a test needs). */
  readonly partitions?: number;
  /** Short rounds make detection and convergence quick; default 200. */
  readonly gossipIntervalMs?: number;
  /** Default 1000: generous enough that a busy 2-core machine does not cause false suspicion. */
  readonly replicaTimeoutMs?: number;
  readonly extraArgs?: readonly string[];
  /** How many of the nodes start() joins (the first ones); the rest run alone until a test joins them. Default: all. */
  readonly joined?: number;
}

export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly peerPort: number;
  /** Client API base URL. */
  readonly url: string;
  readonly peerUrl: string;
  readonly dataDir: string;
}

export interface MemberView {
  readonly id: string;
  readonly state: string;
  readonly up: boolean;
}

export interface RingView {
  readonly version: number;
  readonly partitionCount: number;
  readonly members: readonly MemberView[];
  readonly partitions: readonly { readonly partition: number; readonly owners: readonly string[] }[];
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

/** What a stopped node's storage holds: objects by "bucket/key", and hints by target. */
export interface StoredData {
  readonly objects: Map<string, VersionedObject>;
  readonly hints: { readonly target: string; readonly bucket: string; readonly key: string }[];
}

const POLL_INTERVAL_MS = 100;
const SCAN_ENTRIES_MAX = 100_000;
const PEER_READ_TIMEOUT_MS = 2000;
const HTTP_TIMEOUT_MS = 10_000;

/** Polls `probe` until it returns a value other than undefined; throws `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadlineMs = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadlineMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? '' : ` (last error: ${String(lastError)})`}`);
    await sleep(POLL_INTERVAL_MS);
  }
}

export { freePortBlock } from './ports';

/** One HTTP call to a node's client API, bounded in time. */
export async function http(baseUrl: string, method: string, path: string, options: { body?: string; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  const response = await fetch(`${baseUrl}${path}`, { method, body: options.body, headers: options.headers, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

/** PUT a text value; `query` is e.g. "w=all", `context` goes in X-Dynamo-Context. */
export async function putText(baseUrl: string, bucket: string, key: string, value: string, options: { context?: string; query?: string } = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = { 'content-type': 'text/plain' };
  if (options.context !== undefined) headers['x-dynamo-context'] = options.context;
  return http(baseUrl, 'PUT', `/v1/buckets/${bucket}/keys/${key}${options.query === undefined ? '' : `?${options.query}`}`, { body: value, headers });
}

export async function getKey(baseUrl: string, bucket: string, key: string, query?: string): Promise<HttpAnswer> {
  return http(baseUrl, 'GET', `/v1/buckets/${bucket}/keys/${key}${query === undefined ? '' : `?${query}`}`);
}

/** The values of a 300 Multiple Choices answer, decoded from base64 and sorted. */
export function siblingTexts(answer: HttpAnswer): string[] {
  const body = JSON.parse(answer.body) as { siblings: { value: string }[] };
  return body.siblings.map((s) => Buffer.from(s.value, 'base64').toString('utf8')).sort();
}

/** The catalogue code of an error answer. */
export function errorCode(answer: HttpAnswer): string | undefined {
  return (JSON.parse(answer.body) as { error?: { code?: string } }).error?.code;
}

/** The live sibling values of an object, as text, sorted. */
export function valuesOf(object: VersionedObject | undefined): string[] {
  if (object === undefined) return [];
  return object.siblings
    .filter((s) => !s.deleted)
    .map((s) => Buffer.from(s.value).toString('utf8'))
    .sort();
}

export class LocalCluster {
  private readonly processes = new Map<string, NodeProcess>();
  private readonly peers = new HttpPeerTransport({ connectionsPerPeer: 2, inFlightPerPeerMax: 64, poolsMax: 64 });

  private constructor(
    readonly dir: string,
    readonly nodes: readonly ClusterNode[],
    private readonly args: readonly string[],
  ) {}

  /** Starts `options.nodes` processes, joins nodes 2..n to n1 and waits for convergence. */
  static async start(options: ClusterOptions): Promise<LocalCluster> {
    ensureBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'dynamokv-cluster-'));
    const nodes: ClusterNode[] = [];
    for (let i = 1; i <= options.nodes; i++) {
      const port = await freePort();
      const peerPort = await freePort();
      nodes.push({ id: `n${i}`, port, peerPort, url: `http://127.0.0.1:${port}`, peerUrl: `http://127.0.0.1:${peerPort}`, dataDir: join(dir, `n${i}`) });
    }
    const args = [
      '--replication', String(options.replication ?? 3),
      '--partitions', String(options.partitions ?? 64),
      '--gossip-interval-ms', String(options.gossipIntervalMs ?? 200),
      '--replica-timeout-ms', String(options.replicaTimeoutMs ?? 1000),
      '--seeds', `127.0.0.1:${nodes[0]!.peerPort}`,
      ...(options.extraArgs ?? []),
    ];
    const cluster = new LocalCluster(dir, nodes, args);
    try {
      await Promise.all(nodes.map((n) => cluster.startNode(n.id)));
      // Joins one at a time: each goes through the claimant, which changes the ring serially anyway.
      for (const node of nodes.slice(1, options.joined ?? nodes.length)) {
        // waitMs: each join waits for the previous one to finish streaming (one change at a time).
        const answer = await http(node.url, 'POST', '/v1/admin/join?waitMs=60000', { body: JSON.stringify({ seed: `127.0.0.1:${nodes[0]!.peerPort}` }), headers: { 'content-type': 'application/json' } });
        if (answer.status !== 200) throw new Error(`join of ${node.id} failed: ${answer.status} ${answer.body}`);
      }
      // With handoff a join returns when its change began; the plan moves on when the transfers are done.
      await waitFor('every membership change to commit', 60_000, async () => {
        for (const node of nodes.slice(0, options.joined ?? nodes.length)) {
            const answer = await http(node.url, 'GET', '/v1/handoff');
          if (answer.status !== 200 || (JSON.parse(answer.body) as { transfers: unknown[] }).transfers.length > 0) return undefined;
        }
        return true;
      });
      if (options.joined === undefined) await cluster.waitConverged();
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  get ids(): string[] {
    return this.nodes.map((n) => n.id);
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  isRunning(id: string): boolean {
    return this.processes.get(id)?.alive === true;
  }

  running(): ClusterNode[] {
    return this.nodes.filter((n) => this.isRunning(n.id));
  }

  logs(id: string): string {
    return this.processes.get(id)?.logs() ?? '';
  }

  /** Starts (or restarts) a node on its own ports and data directory; resolves when /readyz is 200. */
  async startNode(id: string): Promise<void> {
    if (this.isRunning(id)) throw new Error(`${id} is already running`);
    const node = this.node(id);
    this.processes.set(id, await NodeProcess.start({ nodeId: id, dataDir: node.dataDir, port: node.port, peerPort: node.peerPort, args: this.args }));
  }

  /** kill -9: no shutdown code runs. */
  async kill(id: string): Promise<void> {
    await this.processes.get(id)?.stop('SIGKILL');
  }

  /** Graceful stop (SIGTERM); the node finishes in-flight work and closes RocksDB. */
  async stop(id: string): Promise<void> {
    const exit = await this.processes.get(id)?.stop('SIGTERM');
    if (exit !== undefined && exit.code !== 0) throw new Error(`${id} did not stop cleanly: ${JSON.stringify(exit)}\n${this.logs(id)}`);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.running().map((n) => this.stop(n.id)));
  }

  async startAll(): Promise<void> {
    await Promise.all(this.nodes.filter((n) => !this.isRunning(n.id)).map((n) => this.startNode(n.id)));
  }

  /** SIGKILLs every node of this cluster still running and removes the data; safe to call twice. */
  async destroy(): Promise<void> {
    await this.peers.close();
    await Promise.all([...this.processes.values()].map((p) => p.stop('SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }

  async ring(id: string): Promise<RingView> {
    const answer = await http(this.node(id).url, 'GET', '/v1/ring');
    if (answer.status !== 200) throw new Error(`GET /v1/ring on ${id}: ${answer.status} ${answer.body}`);
    return JSON.parse(answer.body) as RingView;
  }

  async status(id: string): Promise<{ cluster: { ringVersion: number; hintBacklog: number; membersUp: number } }> {
    const answer = await http(this.node(id).url, 'GET', '/v1/status');
    return JSON.parse(answer.body) as { cluster: { ringVersion: number; hintBacklog: number; membersUp: number } };
  }

  /** Hints waiting on every running node, as each node's last delivery round counted them. */
  async hintBacklogTotal(): Promise<number> {
    const backlogs = await Promise.all(this.running().map(async (n) => (await this.status(n.id)).cluster.hintBacklog));
    return backlogs.reduce((a, b) => a + b, 0);
  }

  /** The sum of one Prometheus counter or gauge over all its series (labels) and the running nodes. */
  async metricTotal(name: string): Promise<number> {
    let total = 0;
    for (const node of this.running()) {
      const text = (await http(node.url, 'GET', '/metrics')).body;
      for (const line of text.split('\n')) {
        if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
    return total;
  }

  /**
   * Waits until every running node holds the same ring version, and every running node judges
   * every running member up and every stopped member down.
   */
  async waitConverged(timeoutMs = 20_000): Promise<RingView> {
    return waitFor('gossip convergence', timeoutMs, async () => {
      const running = new Set(this.running().map((n) => n.id));
      const rings = await Promise.all([...running].map((id) => this.ring(id)));
      const versions = new Set(rings.map((r) => r.version));
      if (versions.size !== 1) return undefined;
      for (const ring of rings) {
        const active = ring.members.filter((m) => m.state !== 'left');
        if (active.length !== this.nodes.length) return undefined;
        if (active.some((m) => m.up !== running.has(m.id))) return undefined;
      }
      return rings[0];
    });
  }

  /** Waits until every running node judges `id` down (kill -9 is noticed at the next ping). */
  async waitSeenDown(id: string, timeoutMs = 10_000): Promise<void> {
    await waitFor(`every node to see ${id} down`, timeoutMs, async () => {
      for (const node of this.running()) {
        const ring = await this.ring(node.id);
        if (ring.members.find((m) => m.id === id)?.up !== false) return undefined;
      }
      return true;
    });
  }

  /** The key's primary replicas in the plan of `ring`: the owners of partitionOf(bucket, key, Q). */
  static primaries(ring: RingView, bucket: string, key: string): string[] {
    const partition = partitionOf(bucket, key, ring.partitionCount);
    const entry = ring.partitions.find((p) => p.partition === partition);
    if (entry === undefined) throw new Error(`ring has no partition ${partition}`);
    return [...entry.owners];
  }

  /** `count` keys of `bucket` (named from `prefix`) whose primaries satisfy `accept`. */
  static findKeys(ring: RingView, bucket: string, prefix: string, count: number, accept: (primaries: string[]) => boolean): string[] {
    const keys: string[] = [];
    for (let i = 0; i < 100_000 && keys.length < count; i++) {
      const key = `${prefix}-${i}`;
      if (accept(LocalCluster.primaries(ring, bucket, key))) keys.push(key);
    }
    if (keys.length < count) throw new Error(`only ${keys.length} keys with prefix ${prefix} have the wanted primaries`);
    return keys;
  }

  /** Nodes (running ones only) whose own storage holds a live copy of the key. */
  async holders(bucket: string, key: string, partitionCount: number): Promise<string[]> {
    const found: string[] = [];
    for (const node of this.running()) if (valuesOf(await this.readReplica(node.id, bucket, key, partitionCount)).length > 0) found.push(node.id);
    return found;
  }

  /** Starts every stopped node, waits for convergence and for every hint to be delivered. */
  async heal(timeoutMs = 30_000): Promise<void> {
    await this.startAll();
    await this.waitConverged(timeoutMs);
    await waitFor('hint backlog 0 on every node', timeoutMs, async () => ((await this.hintBacklogTotal()) === 0 ? true : undefined));
  }

  /** The node's own copy of a key, read through its peer API: a local read that repairs nothing. */
  async readReplica(id: string, bucket: string, key: string, partitionCount: number): Promise<VersionedObject | undefined> {
    const partition = partitionOf(bucket, key, partitionCount);
    const { object } = await this.peers.call(this.node(id).peerUrl, 'read', { partition, bucket, key }, PEER_READ_TIMEOUT_MS);
    return object === null ? undefined : decodeObject(object);
  }

  /** Every object and hint in a stopped node's RocksDB, read with the node's own storage code. */
  async storedData(id: string): Promise<StoredData> {
    if (this.isRunning(id)) throw new Error(`${id} is running; its RocksDB is locked`);
    const engine = new RocksDbEngine({ path: this.node(id).dataDir });
    await engine.open();
    const store = new ObjectStore(engine, { maxLockWaiters: 1 });
    try {
      const objects = new Map<string, VersionedObject>();
      const dataRange = { gte: Uint8Array.of(0x01), lt: Uint8Array.of(0x02), limit: SCAN_ENTRIES_MAX };
      for await (const [rawKey] of engine.scan(dataRange)) {
        const { partition, bucket, key } = decodeDataKey(rawKey);
        const object = await store.read(partition, bucket, key);
        if (object !== undefined) objects.set(`${bucket}/${key}`, object);
      }
      const hints: StoredData['hints'][number][] = [];
      for await (const [rawKey] of engine.scan({ ...allHintsRange(), limit: SCAN_ENTRIES_MAX })) {
        const { target, bucket, key } = decodeHintKey(rawKey);
        hints.push({ target, bucket, key });
      }
      return { objects, hints };
    } finally {
      await store.close();
    }
  }
}
