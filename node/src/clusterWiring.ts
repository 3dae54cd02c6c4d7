/**
 * Wiring of the cluster layer for a real node: the HTTP peer transport and server around the parts
 * cluster/assembly.ts puts together, with the real clock. Like server.ts, nothing clever here.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import { DynamoError } from './api/errors';
import { ClusterMetrics } from './clusterMetrics';
import { AntiEntropy } from './cluster/antiEntropy';
import { assembleNode, type ClusterSettings } from './cluster/assembly';
import { ALWAYS_ADMIT, type BackgroundAdmission } from './cluster/backgroundBudget';
import { CoordinationError, type Coordinator } from './cluster/coordinator';
import type { Handoff } from './cluster/handoff';
import type { HintDeliverer } from './cluster/hints';
import { type Membership, MembershipError } from './cluster/membership';
import type { Reaper, ReaperMetrics } from './cluster/reaper';
import { realRuntime } from './cluster/runtime';
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
  readonly reaper: Reaper;
  readonly peerServer: FastifyInstance;
  /** Counters the API layer adds to (quorum failures). */
  readonly metrics: ClusterMetrics;
  actorId(): string;
  /** Takes a new actor id, e.g. before corrupt bytes of a key are replaced (see ObjectStore). */
  renewActorId(): void;
  startLoops(): void;
  stop(): Promise<void>;
}

/** Room for a value at the size limit plus the object's metadata and msgpack framing. */
const PEER_BODY_OVERHEAD_BYTES = 1024 * 1024;
/** Room in a handoff batch for the last entry's bucket, key and framing beyond its value. */
const HANDOFF_NAMES_ROOM_BYTES = 64 * 1024;

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

/** What server.ts hands the cluster layer besides the configuration. */
export interface ClusterExtras {
  /** Admission of background work (hints, anti-entropy, handoff); default: never wait. */
  readonly budget?: BackgroundAdmission;
  /** Key and certificate (PEM) of the node, and the CA bundle peers must chain to, when config.tls.peer is set. */
  readonly peerTls?: { readonly key: Buffer; readonly cert: Buffer; readonly ca?: Buffer };
}

export async function startCluster(config: NodeConfig, engine: StorageEngine, store: ObjectStore, metrics: NodeMetrics, logger: Logger, extras: ClusterExtras = {}): Promise<RunningCluster> {
  const budget = extras.budget ?? ALWAYS_ADMIT;
  const peerTls = extras.peerTls;
  const transport = new HttpPeerTransport({
    connectionsPerPeer: 32,
    inFlightPerPeerMax: 4096,
    poolsMax: 1024,
    ...(config.peerSecret ? { peerSecret: config.peerSecret } : {}),
    ...(peerTls === undefined ? {} : { tls: peerTls.ca === undefined ? {} : { ca: peerTls.ca } }),
  });
  const clientScheme = config.tls === undefined ? 'http' : 'https';
  const peerScheme = peerTls === undefined ? 'http' : 'https';
  const onError = (what: string, error: unknown) => logger.warn({ err: (error as Error).message }, `${what} failed`);
  // Gauges read the ring only after membership has loaded it.
  const started: { membership?: Membership } = {};
  const clusterMetrics = new ClusterMetrics(metrics.registry, () => started.membership, (count) => metrics.siblingsDropped(count));
  const node = assembleNode({
    self: { id: config.nodeId, clientUrl: `${clientScheme}://${urlHost(config.advertiseHost)}:${config.port}`, peerUrl: `${peerScheme}://${urlHost(config.advertiseHost)}:${config.peerPort}` },
    engine,
    store,
    transport,
    runtime: realRuntime,
    settings: clusterSettings(config),
    metrics: clusterMetrics,
    reaperMetrics: reaperMetrics(metrics),
    newActorId: () => newActorId(config.nodeId),
    onError,
    budget,
  });
  const { membership, coordinator, hints, antiEntropy, handoff, reaper } = node;
  const peerServer = buildPeerServer({
    handlers: node.handlers,
    describeError,
    bodyLimitBytes: config.limits.maxValueBytes + PEER_BODY_OVERHEAD_BYTES,
    ...(peerTls === undefined ? {} : { https: { key: peerTls.key, cert: peerTls.cert } }),
    inFlightMax: config.limits.maxInFlightRequests * 4,
    ...(config.peerSecret ? { peerSecret: config.peerSecret } : {}),
  });
  await node.startMembership();
  started.membership = membership;
  membership.onRingChange((ring) => logger.info({ ringVersion: ring.version, members: ring.members.map((m) => `${m.id}:${m.state}`) }, 'ring changed'));
  return {
    membership,
    coordinator,
    hints,
    antiEntropy,
    handoff,
    reaper,
    peerServer,
    metrics: clusterMetrics,
    actorId: node.actorId,
    renewActorId: node.renewActorId,
    startLoops: node.startLoops,
    stop: async () => {
      await node.stop();
      await peerServer.close();
      await transport.close();
    },
  };
}

/** Objects one reaping round reads at most while looking for tombstones. */
const REAPER_SCAN_KEYS_PER_ROUND_MAX = 20_000;

/** The cluster layer's knobs from the node's configuration. */
export function clusterSettings(config: NodeConfig): ClusterSettings {
  return {
    partitionCount: config.partitionCount,
    replicationFactor: config.replicationFactor,
    gossipIntervalMs: config.gossipIntervalMs,
    replicaTimeoutMs: config.replicaTimeoutMs,
    maxSiblings: config.limits.maxSiblings,
    hints: { intervalMs: 1000, batchSize: 200, hintsPerSecondMax: 2000, backoffMaxMs: 30_000 },
    trees: { shape: DEFAULT_TREE_SHAPE, scanPageSize: 512, keysPerPartitionMax: 10_000_000 },
    antiEntropy: config.antiEntropy,
    handoff: {
      enabled: config.handoff.enabled,
      intervalMs: 500,
      batchKeysMax: 1000,
      // A batch is at most a quarter second of the throttle's budget, so the stream stays smooth,
      // and it must fit the peer port's body limit (maxValueBytes + PEER_BODY_OVERHEAD_BYTES) even
      // after its last entry, one value of up to maxValueBytes with its names, pushed it past this.
      batchBytesMax: Math.min(PEER_BODY_OVERHEAD_BYTES - HANDOFF_NAMES_ROOM_BYTES, Math.max(1024, Math.floor(config.handoff.bytesPerSecondMax / 4))),
      bytesPerSecondMax: config.handoff.bytesPerSecondMax,
      concurrencyMax: config.handoff.concurrencyMax,
    },
    tombstones: { ...config.tombstones, scanKeysPerRoundMax: REAPER_SCAN_KEYS_PER_ROUND_MAX },
  };
}

/** dynamokv_tombstones_reaped_total and dynamokv_tombstones_pending on the node's registry. */
function reaperMetrics(metrics: NodeMetrics): ReaperMetrics {
  const registers = [metrics.registry];
  const reaped = new Counter({ name: 'dynamokv_tombstones_reaped_total', help: 'Tombstones this node removed after every member confirmed them.', registers });
  const pending = new Gauge({ name: 'dynamokv_tombstones_pending', help: 'Tombstones this node holds in the partitions it owns, as counted by the reaper\'s last visit of each.', registers });
  return {
    tombstonesReaped: (count) => reaped.inc(count),
    tombstonesPending: (count) => pending.set(count),
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
