/**
 * API apps for inject() tests, wired the way server.ts wires a node: ClusterKeyValueService over
 * the production Membership, Coordinator and HintDeliverer, and the cluster routes, but over
 * in-memory storage, an in-memory peer network and a virtual clock. No sockets, no real timers.
 *
 * buildTestApp() is one node: a cluster of one member (N=3 configured, so one copy). For cluster
 * routes and quorum tests, buildTestCluster() builds several nodes on one network and one
 * virtual clock; `advance()` runs gossip and pings, `isolate()` cuts a node off.
 */
import pino from 'pino';
import { buildApp, type App, type AppDeps } from '../../node/src/api/app';
import { ClusterKeyValueService, type QuorumDefaults } from '../../node/src/api/clusterKeyValueService';
import { registerClusterRoutes } from '../../node/src/api/clusterRoutes';
import { ContextCodec } from '../../node/src/api/contextToken';
import type { KeyValueService } from '../../node/src/api/keyValueService';
import { validateBucket, type ValidationLimits } from '../../node/src/api/validation';
import { Coordinator } from '../../node/src/cluster/coordinator';
import { HintDeliverer } from '../../node/src/cluster/hints';
import { Membership } from '../../node/src/cluster/membership';
import { settle } from '../../node/src/cluster/memoryCluster';
import { buildPeerHandlers } from '../../node/src/cluster/peerHandlers';
import { VirtualRuntime } from '../../node/src/cluster/virtualRuntime';
import { ClusterMetrics } from '../../node/src/clusterMetrics';
import { NodeMetrics } from '../../node/src/metrics';
import { MemoryEngine } from '../../node/src/storage/memory';
import { ObjectStore } from '../../node/src/storage/objectStore';
import { MemoryNetwork } from '../../node/src/transport/memoryNetwork';

export const TEST_SECRET = 'test-context-secret-0123456789';
export const TEST_PARTITION_COUNT = 16;
/** Wall clock the services stamp lastModified with, unless a test moves it. */
const START_WALL_CLOCK_MS = Date.UTC(2026, 10, 25, 12, 0, 0);
/** Gossip, ping and hint rounds (virtual time); advance() by a few of these to converge. */
export const TEST_GOSSIP_INTERVAL_MS = 1000;
/** Virtual time for joins to spread and every node to have heartbeats from every other. */
const CONVERGE_MS = 3000;

export interface TestAppOptions {
  readonly maxBucketBytes?: number;
  readonly maxKeyBytes?: number;
  readonly maxValueBytes?: number;
  readonly maxSiblings?: number;
  readonly maxInFlightRequests?: number;
  readonly authToken?: string;
  /** Client tokens with scopes (api/auth.ts). */
  readonly tokens?: AppDeps['tokens'];
  readonly extraRoutes?: AppDeps['extraRoutes'];
  /** Replaces the service, e.g. with one that blocks or counts calls. */
  readonly service?: (cluster: KeyValueService) => KeyValueService;
  /** N, the cluster's replication factor (default 3). */
  readonly replicationFactor?: number;
  /** Node defaults for r, w, dw (default quorum, quorum, 0, as the node configuration). */
  readonly quorums?: QuorumDefaults;
  /** Seed of the virtual runtime's PRNG (cluster id, gossip partners). */
  readonly seed?: number;
  /**
   * true: joins and leaves record a pending change (as with handoff on a real node). No handoff
   * loop runs here, so the change stays pending until a test aborts it: the pending view and
   * the abort route can be looked at without racing a stream.
   */
  readonly handoff?: boolean;
}

export interface TestClusterOptions extends TestAppOptions {
  readonly nodes: number;
  /** false: every node stays a ring of its own, for tests that join them through the API. */
  readonly joined?: boolean;
}

export interface TestApp {
  readonly id: string;
  /** Base URL of this node's peer API on the in-memory network, e.g. http://127.0.0.1:9001. */
  readonly peerUrl: string;
  /** The same as "host:port", as a join body names a seed. */
  readonly peerAddress: string;
  readonly app: App;
  readonly engine: MemoryEngine;
  readonly store: ObjectStore;
  readonly metrics: NodeMetrics;
  readonly contexts: ContextCodec;
  readonly membership: Membership;
  readonly hints: HintDeliverer;
  /** The wall clock the service stamps writes with; tests move it by hand. */
  readonly clock: { nowMs: number };
  close(): Promise<void>;
}

export interface TestCluster {
  readonly nodes: readonly TestApp[];
  readonly network: MemoryNetwork;
  readonly runtime: VirtualRuntime;
  /** Shared by every node's service. */
  readonly clock: { nowMs: number };
  node(id: string): TestApp;
  /** Moves virtual time: gossip, pings and hint delivery run. */
  advance(ms: number): Promise<void>;
  /** Cuts a node off the peer network in both directions. Its client API still answers. */
  isolate(id: string): void;
  heal(id?: string): void;
  close(): Promise<void>;
}

/** One node, a cluster of one member. */
export async function buildTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const cluster = await buildTestCluster({ ...options, nodes: 1 });
  return cluster.nodes[0]!;
}

/**
 * Nodes t1..tN on one in-memory network. Node i's peer API is http://127.0.0.1:900i; joined
 * clusters (the default) have t2..tN joined to t1 and converged, as the local-mode launcher does.
 */
export async function buildTestCluster(options: TestClusterOptions): Promise<TestCluster> {
  const runtime = new VirtualRuntime(options.seed ?? 1);
  const network = new MemoryNetwork();
  const clock = { nowMs: START_WALL_CLOCK_MS };
  const ids = Array.from({ length: options.nodes }, (_, i) => `t${i + 1}`);
  const firstSeed = peerAddressOf(1);
  const nodes: TestApp[] = [];
  for (const [index, id] of ids.entries()) {
    nodes.push(await startTestNode(id, index + 1, { runtime, network, clock, options, defaultSeed: index === 0 ? undefined : firstSeed }));
  }
  const cluster: TestCluster = {
    nodes,
    network,
    runtime,
    clock,
    node: (id) => {
      const found = nodes.find((n) => n.id === id);
      if (found === undefined) throw new Error(`no test node ${id}`);
      return found;
    },
    advance: (ms) => runtime.advanceBy(ms, settle),
    isolate: (id) => network.isolate(cluster.node(id).peerUrl),
    heal: (id) => network.heal(id === undefined ? undefined : cluster.node(id).peerUrl),
    close: async () => {
      for (const node of nodes) await node.close();
    },
  };
  if (options.joined !== false && nodes.length > 1) {
    for (const node of nodes.slice(1)) await node.membership.join(nodes[0]!.peerUrl);
    await cluster.advance(CONVERGE_MS);
  }
  return cluster;
}

function peerAddressOf(index: number): string {
  return `127.0.0.1:${9000 + index}`;
}

interface Shared {
  readonly runtime: VirtualRuntime;
  readonly network: MemoryNetwork;
  readonly clock: { nowMs: number };
  readonly options: TestAppOptions;
  readonly defaultSeed: string | undefined;
}

async function startTestNode(id: string, index: number, shared: Shared): Promise<TestApp> {
  const { runtime, network, clock, options } = shared;
  const peerAddress = peerAddressOf(index);
  const peerUrl = `http://${peerAddress}`;
  const engine = new MemoryEngine();
  await engine.open();
  const store = new ObjectStore(engine, { maxLockWaiters: 16 });
  const metrics = new NodeMetrics({ storageBytes: async () => (await engine.stats()).approximateBytes, collectProcessMetrics: false });
  const transport = network.transportFor(peerUrl);
  // Background loops only log in production; a test that cares reads the state they change.
  const onError = () => undefined;
  const membership = new Membership(
    engine,
    transport,
    runtime,
    {
      self: { id, clientUrl: `http://127.0.0.1:${8000 + index}`, peerUrl },
      partitionCount: TEST_PARTITION_COUNT,
      replicationFactor: options.replicationFactor ?? 3,
      gossipIntervalMs: TEST_GOSSIP_INTERVAL_MS,
      peerTimeoutMs: 500,
      handoff: options.handoff === true,
    },
    onError,
  );
  const clusterMetrics = new ClusterMetrics(metrics.registry, () => membership, (count) => metrics.siblingsDropped(count));
  let incarnation = 1;
  let actorId = `${id}.${incarnation}`;
  const coordinator = new Coordinator(store, membership, transport, () => actorId, clusterMetrics, {
    replicaTimeoutMs: 500,
    forwardHopsMax: 1,
    maxSiblings: options.maxSiblings ?? 100,
  });
  const hints = new HintDeliverer(
    engine,
    store,
    membership,
    transport,
    runtime,
    clusterMetrics,
    { intervalMs: TEST_GOSSIP_INTERVAL_MS, batchSize: 100, hintsPerSecondMax: 1000, timeoutMs: 500, backoffMaxMs: 8000 },
    onError,
    () => {
      actorId = `${id}.${++incarnation}`;
    },
  );
  const conflictModeOf = (bucket: string) => membership.ring().buckets[bucket]?.conflictMode ?? 'siblings';
  network.register(peerUrl, buildPeerHandlers(coordinator, membership, conflictModeOf));
  await membership.start();
  hints.start();

  const cluster = new ClusterKeyValueService(coordinator, membership, options.quorums ?? { r: 'quorum', w: 'quorum', dw: 0 }, false, () => clock.nowMs);
  const limits: ValidationLimits & { maxInFlightRequests: number } = {
    maxBucketBytes: options.maxBucketBytes ?? 100,
    maxKeyBytes: options.maxKeyBytes ?? 1024,
    maxValueBytes: options.maxValueBytes ?? 1024 * 1024,
    maxInFlightRequests: options.maxInFlightRequests ?? 1024,
  };
  const contexts = new ContextCodec(TEST_SECRET);
  const app = buildApp({
    service: options.service ? options.service(cluster) : cluster,
    contexts,
    metrics,
    logger: pino({ level: 'silent' }),
    limits,
    authToken: options.authToken,
    tokens: options.tokens,
    extraRoutes: [
      (fastify, guards) =>
        registerClusterRoutes(fastify, {
          guards,
          membership,
          hintBacklog: () => hints.backlog(),
          validateBucket: (bucket) => validateBucket(bucket, limits),
          ...(shared.defaultSeed === undefined ? {} : { defaultSeed: shared.defaultSeed }),
        }),
      ...(options.extraRoutes ?? []),
    ],
    status: async () => {
      const ring = membership.ring();
      const members = ring.members.filter((m) => m.state !== 'left');
      return {
        nodeId: id,
        version: '0.0.0-test',
        uptimeSeconds: 0,
        storage: { engine: 'memory', approximateBytes: 0 },
        cluster: {
          clusterId: ring.clusterId,
          ringVersion: ring.version,
          members: members.length,
          membersUp: members.filter((m) => membership.isUp(m.id)).length,
          hintBacklog: hints.backlog(),
          actorId,
        },
      };
    },
  });
  app.setReady(true);
  await app.fastify.ready();
  return {
    id,
    peerUrl,
    peerAddress,
    app,
    engine,
    store,
    metrics,
    contexts,
    membership,
    hints,
    clock,
    close: async () => {
      membership.stop();
      hints.stop();
      await app.fastify.close();
      await store.close();
    },
  };
}
