/**
 * An API app over an in-memory engine, for inject() tests: the same wiring as server.ts with a
 * controllable clock and silent logs.
 */
import pino from 'pino';
import { buildApp, type App, type AppDeps } from '../../node/src/api/app';
import { ContextCodec } from '../../node/src/api/contextToken';
import { LocalKeyValueService, type KeyValueService } from '../../node/src/api/keyValueService';
import { NodeMetrics } from '../../node/src/metrics';
import { MemoryEngine } from '../../node/src/storage/memory';
import { ObjectStore } from '../../node/src/storage/objectStore';

export const TEST_SECRET = 'test-context-secret-0123456789';

export interface TestAppOptions {
  readonly maxBucketBytes?: number;
  readonly maxKeyBytes?: number;
  readonly maxValueBytes?: number;
  readonly maxSiblings?: number;
  readonly maxInFlightRequests?: number;
  readonly authToken?: string;
  readonly extraRoutes?: AppDeps['extraRoutes'];
  /** Replaces the service, e.g. with one that blocks or counts calls. */
  readonly service?: (local: KeyValueService) => KeyValueService;
}

export interface TestApp {
  readonly app: App;
  readonly engine: MemoryEngine;
  readonly store: ObjectStore;
  readonly metrics: NodeMetrics;
  readonly contexts: ContextCodec;
  /** The wall clock the service stamps writes with; tests move it by hand. */
  readonly clock: { nowMs: number };
  close(): Promise<void>;
}

export async function buildTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const engine = new MemoryEngine();
  await engine.open();
  const store = new ObjectStore(engine, { maxLockWaiters: 16 });
  const clock = { nowMs: Date.UTC(2026, 10, 25, 12, 0, 0) };
  const metrics = new NodeMetrics({ storageBytes: async () => (await engine.stats()).approximateBytes, collectProcessMetrics: false });
  const local = new LocalKeyValueService(store, {
    nodeId: 't1',
    partitionCount: 16,
    maxSiblings: options.maxSiblings ?? 100,
    syncWrites: false,
    nowMs: () => clock.nowMs,
    onSiblingsDropped: (count) => metrics.siblingsDropped(count),
  });
  const contexts = new ContextCodec(TEST_SECRET);
  const app = buildApp({
    service: options.service ? options.service(local) : local,
    contexts,
    metrics,
    logger: pino({ level: 'silent' }),
    limits: {
      maxBucketBytes: options.maxBucketBytes ?? 100,
      maxKeyBytes: options.maxKeyBytes ?? 1024,
      maxValueBytes: options.maxValueBytes ?? 1024 * 1024,
      maxInFlightRequests: options.maxInFlightRequests ?? 1024,
    },
    authToken: options.authToken,
    extraRoutes: options.extraRoutes,
    status: async () => ({ nodeId: 't1', version: '0.0.0-test', uptimeSeconds: 0, storage: { engine: 'memory', approximateBytes: 0 } }),
  });
  app.setReady(true);
  await app.fastify.ready();
  return {
    app,
    engine,
    store,
    metrics,
    contexts,
    clock,
    close: async () => {
      await app.fastify.close();
      await store.close();
    },
  };
}
