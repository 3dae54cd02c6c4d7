/**
 * Wiring only: configuration -> RocksDB engine -> object store -> key-value service -> HTTP app.
 * Nothing clever belongs here; each piece is built and tested in its own module.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildApp, type App } from './api/app';
import { ContextCodec } from './api/contextToken';
import { ClusterKeyValueService } from './api/clusterKeyValueService';
import { registerClusterRoutes } from './api/clusterRoutes';
import { validateBucket } from './api/validation';
import { startCluster, type RunningCluster } from './clusterWiring';
import type { NodeConfig } from './config';
import type { Logger } from './log';
import { NodeMetrics } from './metrics';
import { ObjectStore } from './storage/objectStore';
import { RocksDbEngine } from './storage/rocksdb';

export { buildApp, type App, type AppDeps } from './api/app';

export interface RunningNode {
  readonly app: App;
  /** host:port the client API listens on. */
  readonly address: string;
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

export async function startNode(config: NodeConfig, logger: Logger): Promise<RunningNode> {
  const startedAtMs = Date.now();
  mkdirSync(config.dataDir, { recursive: true });
  const engine = new RocksDbEngine({ path: config.dataDir });
  await engine.open();
  const store = new ObjectStore(engine, { maxLockWaiters: config.limits.maxLockWaiters });
  const metrics = new NodeMetrics({ storageBytes: async () => (await engine.stats()).approximateBytes, collectProcessMetrics: true });
  const cluster = await startCluster(config, engine, store, metrics, logger);
  const service = new ClusterKeyValueService(cluster.coordinator, cluster.membership, config.quorums, config.syncWrites, () => Date.now());
  const limits = config.limits;
  const app = buildApp({
    service,
    contexts: new ContextCodec(config.contextSecret),
    metrics,
    logger,
    limits,
    authToken: config.authToken,
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
  cluster.startLoops();
  app.setReady(true);
  return {
    app,
    address: `${config.host}:${config.port}`,
    close: async () => {
      const clean = await shutdown(app, store, config.shutdownTimeoutMs, logger, cluster.stop);
      return clean;
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
