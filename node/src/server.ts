/**
 * Wiring only: configuration -> RocksDB engine -> object store -> key-value service -> HTTP app.
 * Nothing clever belongs here; each piece is built and tested in its own module.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Counter } from 'prom-client';
import { buildApp, type App } from './api/app';
import { ContextCodec } from './api/contextToken';
import { ClusterKeyValueService } from './api/clusterKeyValueService';
import { registerClusterRoutes } from './api/clusterRoutes';
import { validateBucket } from './api/validation';
import { BackgroundBudget, DEFAULT_BACKGROUND_BUDGET_OPTIONS } from './cluster/backgroundBudget';
import { realRuntime } from './cluster/runtime';
import { startCluster, type RunningCluster } from './clusterWiring';
import type { NodeConfig, NodeTls } from './config';
import type { Logger } from './log';
import { NodeMetrics } from './metrics';
import { ObjectStore } from './storage/objectStore';
import { RocksDbEngine } from './storage/rocksdb';

export { buildApp, type App, type AppDeps } from './api/app';

export interface RunningNode {
  readonly app: App;
  /** host:port the client API listens on. */
  readonly address: string;
  /** The client API's base URL: http or https, host and port. */
  readonly url: string;
  /**
   * Graceful shutdown: refuse new requests, let in-flight ones finish (at most
   * shutdownTimeoutMs, then cut their connections), close storage. Resolves to true when nothing
   * had to be cut.
   */
  close(): Promise<boolean>;
}

export const NODE_VERSION = readPackageVersion();

/** With --require-admission: not ready until admitted (init or join) and a normal member. */
function admissionProblem(membership: RunningCluster['membership']): string | undefined {
  if (!membership.admitted()) return 'not-admitted';
  const state = membership.member(membership.selfId)?.state;
  return state === 'normal' ? undefined : (state ?? 'not-a-member');
}

/** The TLS files, read before anything is opened so a bad path stops start-up at once. */
function readTlsFiles(tls: NodeTls | undefined): { key: Buffer; cert: Buffer; ca?: Buffer } | undefined {
  if (tls === undefined) return undefined;
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      // The path is configuration, not a secret; the file's content never reaches a message.
      throw new Error(`cannot read the TLS ${what} file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
    }
  };
  return { key: read('key', tls.keyFile), cert: read('certificate', tls.certFile), ...(tls.peerCaFile === undefined ? {} : { ca: read('peer CA', tls.peerCaFile) }) };
}

export async function startNode(config: NodeConfig, logger: Logger): Promise<RunningNode> {
  const startedAtMs = Date.now();
  const tlsFiles = readTlsFiles(config.tls);
  mkdirSync(config.dataDir, { recursive: true });
  const engine = new RocksDbEngine({ path: config.dataDir });
  await engine.open();
  const store = new ObjectStore(engine, { maxLockWaiters: config.limits.maxLockWaiters });
  const metrics = new NodeMetrics({ storageBytes: async () => (await engine.stats()).approximateBytes, collectProcessMetrics: true });
  // Background work yields to client requests; the app that counts them is built below.
  const foreground: { inFlight: () => number } = { inFlight: () => 0 };
  const budget = new BackgroundBudget(realRuntime, () => foreground.inFlight(), { ...DEFAULT_BACKGROUND_BUDGET_OPTIONS, inFlightHigh: Math.max(1, Math.floor(config.limits.maxInFlightRequests / 4)) }, backgroundMetrics(metrics));
  const cluster = await startCluster(config, engine, store, metrics, logger, {
    budget,
    ...(tlsFiles !== undefined && config.tls?.peer === true ? { peerTls: tlsFiles } : {}),
  });
  store.onCorruptObject = corruptionHandler(metrics, logger, cluster);
  const service = new ClusterKeyValueService(cluster.coordinator, cluster.membership, config.quorums, config.syncWrites, () => Date.now(), (operation) => cluster.metrics.quorumFailed(operation));
  const limits = config.limits;
  const app = buildApp({
    service,
    contexts: new ContextCodec(config.contextSecret),
    metrics,
    logger,
    limits,
    tokens: config.clientTokens,
    ...(tlsFiles === undefined ? {} : { https: { key: tlsFiles.key, cert: tlsFiles.cert } }),
    readinessProblem: () => (config.requireAdmission ? admissionProblem(cluster.membership) : undefined),
    extraRoutes: [
      (fastify, guards) =>
        registerClusterRoutes(fastify, {
          guards,
          membership: cluster.membership,
          hintBacklog: () => cluster.hints.backlog(),
          transfers: () => cluster.handoff.view(),
          validateBucket: (bucket) => validateBucket(bucket, limits),
          defaultSeed: config.seeds[0],
        }),
    ],
    status: async () => {
      const stats = await engine.stats();
      const ring = cluster.membership.ring();
      return {
        nodeId: config.nodeId,
        version: NODE_VERSION,
        uptimeSeconds: Math.floor((Date.now() - startedAtMs) / 1000),
        storage: { engine: stats.engine, approximateBytes: stats.approximateBytes },
        cluster: {
          clusterId: ring.clusterId,
          ringVersion: ring.version,
          members: ring.members.filter((m) => m.state !== 'left').length,
          membersUp: ring.members.filter((m) => m.state !== 'left' && cluster.membership.isUp(m.id)).length,
          hintBacklog: cluster.hints.backlog(),
          actorId: cluster.actorId(),
        },
        antiEntropy: cluster.antiEntropy.summary(),
      };
    },
  });
  try {
    await cluster.peerServer.listen({ host: config.host, port: config.peerPort });
    await app.fastify.listen({ host: config.host, port: config.port });
  } catch (error) {
    await cluster.stop();
    await store.close();
    throw error;
  }
  foreground.inFlight = () => app.inFlightRequests();
  budget.start();
  cluster.startLoops();
  app.setReady(true);
  const stopCluster = async () => {
    budget.stop();
    await cluster.stop();
  };
  return {
    app,
    address: `${config.host}:${config.port}`,
    url: `${config.tls === undefined ? 'http' : 'https'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`,
    close: async () => {
      const clean = await shutdown(app, store, config.shutdownTimeoutMs, logger, stopCluster);
      return clean;
    },
  };
}

/**
 * Every corrupt object found is counted and logged with its partition and key (never its bytes);
 * before corrupt bytes are replaced by a repair, the node takes a new actor id (see ObjectStore).
 */
function corruptionHandler(metrics: NodeMetrics, logger: Logger, cluster: RunningCluster): NonNullable<ObjectStore['onCorruptObject']> {
  const counter = new Counter({
    name: 'dynamokv_corrupt_objects_total',
    help: 'Stored objects found failing their checksum or format check (each detection counts; the copy is never served and is repaired from other replicas).',
    registers: [metrics.registry],
  });
  return (event) => {
    counter.inc();
    if (event.replaced) cluster.renewActorId();
    logger.error({ partition: event.partition, bucket: event.bucket, key: event.key, reason: event.reason, replaced: event.replaced }, 'corrupt stored object');
  };
}

function backgroundMetrics(metrics: NodeMetrics) {
  const deferred = new Counter({
    name: 'dynamokv_background_deferred_total',
    help: 'Units of background work (hints, anti-entropy, handoff) that waited because clients kept the node busy.',
    labelNames: ['kind'],
    registers: [metrics.registry],
  });
  const waited = new Counter({
    name: 'dynamokv_background_deferred_seconds_total',
    help: 'Time background work spent waiting for the node to be less busy.',
    labelNames: ['kind'],
    registers: [metrics.registry],
  });
  return {
    deferred: (kind: string, waitedMs: number) => {
      deferred.inc({ kind });
      waited.inc({ kind }, waitedMs / 1000);
    },
  };
}

async function shutdown(app: App, store: ObjectStore, timeoutMs: number, logger: Logger, stopCluster: () => Promise<void>): Promise<boolean> {
  app.beginShutdown();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  // fastify.close() stops listening, closes idle keep-alive connections and waits for the
  // requests in flight; if they outlast the bound, their connections are cut.
  const closing = app.fastify.close();
  const outcome = await Promise.race([closing.then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    logger.warn({ inFlightRequests: app.inFlightRequests(), timeoutMs }, 'shutdown timeout: cutting open connections');
    app.fastify.server.closeAllConnections();
    await closing;
  }
  await stopCluster();
  await store.close();
  return outcome === 'closed';
}

function readPackageVersion(): string {
  // Compiled to dist/node/src/server.js or run from node/src/server.ts: the root is three up.
  for (const root of [join(__dirname, '..', '..'), join(__dirname, '..', '..', '..')]) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
      if (typeof parsed === 'object' && parsed !== null && 'name' in parsed && parsed.name === 'dynamokv' && 'version' in parsed && typeof parsed.version === 'string') {
        return parsed.version;
      }
    } catch {
      // Try the next candidate.
    }
  }
  return 'unknown';
}
