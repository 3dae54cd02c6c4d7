/**
 * Wiring of the cluster layer for a real node: peer transport and server, membership, the
 * coordinator and hint delivery, with the real clock. Like server.ts, nothing clever here.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { DynamoError } from './api/errors';
import { ClusterMetrics } from './clusterMetrics';
import { AntiEntropy } from './cluster/antiEntropy';
import { CoordinationError, Coordinator } from './cluster/coordinator';
import { Handoff } from './cluster/handoff';
import { HintDeliverer } from './cluster/hints';
import { Membership, MembershipError } from './cluster/membership';
import { buildPeerHandlers } from './cluster/peerHandlers';
import { realRuntime } from './cluster/runtime';
import { TreeStore } from './cluster/treeStore';
import type { NodeConfig } from './config';
import { ContextDecodeError } from './core/context';
import { DEFAULT_TREE_SHAPE } from './core/tictac';
import type { Logger } from './log';
import type { NodeMetrics } from './metrics';
import type { StorageEngine } from './storage/engine';
import { CorruptObjectError } from './storage/objectCodec';
import { OverloadedError, type ObjectStore } from './storage/objectStore';
import { HttpPeerTransport, PeerCallError } from './transport/peerClient';
import { buildPeerServer, type PeerErrorBody } from './transport/peerServer';

export interface RunningCluster {
  readonly membership: Membership;
  readonly coordinator: Coordinator;
  readonly hints: HintDeliverer;
  readonly antiEntropy: AntiEntropy;
  readonly handoff: Handoff;
  readonly peerServer: FastifyInstance;
  actorId(): string;
  startLoops(): void;
  stop(): Promise<void>;
}

/** Room for a value at the size limit plus the object's metadata and msgpack framing. */
const PEER_BODY_OVERHEAD_BYTES = 1024 * 1024;

/**
 * Dots must never repeat for one actor. A node may have lost unsynced writes in a crash, or
 * dropped hinted copies, so it takes a fresh actor id at every start and after dropping copies.
 */
function newActorId(nodeId: string): string {
  return `${nodeId}.${randomBytes(4).toString('hex')}`;
}

/** An IPv6 address goes in brackets inside a URL. */
function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function startCluster(config: NodeConfig, engine: StorageEngine, store: ObjectStore, metrics: NodeMetrics, logger: Logger): Promise<RunningCluster> {
  const transport = new HttpPeerTransport({ connectionsPerPeer: 32, inFlightPerPeerMax: 4096, poolsMax: 1024, ...(config.peerSecret ? { peerSecret: config.peerSecret } : {}) });
  const onError = (what: string, error: unknown) => logger.warn({ err: (error as Error).message }, `${what} failed`);
  const membership = new Membership(
    engine,
    transport,
    realRuntime,
    {
      self: { id: config.nodeId, clientUrl: `http://${urlHost(config.advertiseHost)}:${config.port}`, peerUrl: `http://${urlHost(config.advertiseHost)}:${config.peerPort}` },
      partitionCount: config.partitionCount,
      replicationFactor: config.replicationFactor,
      gossipIntervalMs: config.gossipIntervalMs,
      peerTimeoutMs: config.replicaTimeoutMs,
      handoff: config.handoff.enabled,
    },
    onError,
  );
  // Gauges read the ring only after membership has loaded it.
  const started: { membership?: Membership } = {};
  const clusterMetrics = new ClusterMetrics(metrics.registry, () => started.membership, (count) => metrics.siblingsDropped(count));
  let actorId = newActorId(config.nodeId);
  const coordinator = new Coordinator(store, membership, transport, () => actorId, clusterMetrics, {
    replicaTimeoutMs: config.replicaTimeoutMs,
    forwardHopsMax: 1,
    maxSiblings: config.limits.maxSiblings,
  });
  const hints = new HintDeliverer(
    engine,
    store,
    membership,
    transport,
    realRuntime,
    clusterMetrics,
    { intervalMs: 1000, batchSize: 200, hintsPerSecondMax: 2000, timeoutMs: config.replicaTimeoutMs, backoffMaxMs: 30_000 },
    onError,
    () => {
      actorId = newActorId(config.nodeId);
    },
  );
  // Trees follow every write from here on; each is built from storage the first time it is used.
  const trees = new TreeStore(store, { shape: DEFAULT_TREE_SHAPE, scanPageSize: 512, keysPerPartitionMax: 10_000_000 });
  store.onObjectChanged = trees.observe;
  const antiEntropy = new AntiEntropy(
    store,
    trees,
    coordinator,
    membership,
    transport,
    realRuntime,
    clusterMetrics,
    { ...config.antiEntropy, timeoutMs: config.replicaTimeoutMs * 5, maxSiblings: config.limits.maxSiblings },
    onError,
  );
  const conflictModeOf = (bucket: string) => membership.ring().buckets[bucket]?.conflictMode ?? 'siblings';
  const handoff = new Handoff(
    engine,
    trees,
    coordinator,
    membership,
    transport,
    realRuntime,
    clusterMetrics,
    {
      intervalMs: 500,
      batchKeysMax: 1000,
      // A batch is at most a quarter second of the throttle's budget, so the stream stays smooth.
      batchBytesMax: Math.min(4 * 1024 * 1024, Math.max(1024, Math.floor(config.handoff.bytesPerSecondMax / 4))),
      bytesPerSecondMax: config.handoff.bytesPerSecondMax,
      concurrencyMax: config.handoff.concurrencyMax,
      timeoutMs: config.replicaTimeoutMs * 10,
      // Long enough for the committed ring to reach every node by gossip.
      dropGraceMs: config.gossipIntervalMs * 10,
    },
    conflictModeOf,
    onError,
  );
  const peerServer = buildPeerServer({
    handlers: buildPeerHandlers(coordinator, membership, conflictModeOf, antiEntropy, handoff),
    describeError,
    bodyLimitBytes: config.limits.maxValueBytes + PEER_BODY_OVERHEAD_BYTES,
    inFlightMax: config.limits.maxInFlightRequests * 4,
    ...(config.peerSecret ? { peerSecret: config.peerSecret } : {}),
  });
  await membership.start();
  started.membership = membership;
  membership.onRingChange((ring) => logger.info({ ringVersion: ring.version, members: ring.members.map((m) => `${m.id}:${m.state}`) }, 'ring changed'));
  return {
    membership,
    coordinator,
    hints,
    antiEntropy,
    handoff,
    peerServer,
    actorId: () => actorId,
    startLoops: () => {
      hints.start();
      antiEntropy.start();
      handoff.start();
    },
    stop: async () => {
      membership.stop();
      hints.stop();
      await antiEntropy.stop();
      await handoff.stop();
      await peerServer.close();
      await transport.close();
    },
  };
}

/** Maps an error thrown while serving a peer to a status and catalogue code. */
function describeError(error: unknown): PeerErrorBody {
  if (error instanceof DynamoError) return { status: error.status, code: error.code, message: error.message };
  if (error instanceof MembershipError) return { status: error.code === 'MEMBERSHIP_CONFLICT' ? 409 : error.code === 'QUORUM_UNAVAILABLE' ? 503 : 400, code: error.code, message: error.message };
  if (error instanceof CoordinationError) return { status: 503, code: 'QUORUM_UNAVAILABLE', message: error.message };
  if (error instanceof OverloadedError) return { status: 503, code: 'OVERLOADED', message: error.message };
  if (error instanceof CorruptObjectError) return { status: 500, code: 'STORAGE_CORRUPT', message: error.message };
  if (error instanceof PeerCallError) return { status: 503, code: error.code === 'OVERLOADED' ? 'OVERLOADED' : 'QUORUM_UNAVAILABLE', message: error.message };
  if (error instanceof ContextDecodeError) return { status: 400, code: 'CONTEXT_INVALID', message: error.message };
  return { status: 500, code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}
