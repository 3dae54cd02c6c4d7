/**
 * Prometheus metrics of one node, on a Registry of its own (never prom-client's global one), so
 * several nodes or test apps in one process do not mix their numbers.
 *
 * The request path calls `requestFinished` once per request; label children are bound once per
 * (operation, status) and cached, so the hot path does a Map lookup and two increments.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Route names used as the `operation` label; a fixed set keeps label cardinality bounded. */
export const OPERATIONS = ['get', 'put', 'delete', 'healthz', 'readyz', 'metrics', 'status', 'openapi', 'other'] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface MetricsOptions {
  /** Bytes the storage engine holds, read at scrape time. */
  readonly storageBytes: () => Promise<number>;
  /** Process metrics (CPU, memory, event loop, GC). Off in unit tests that build many apps. */
  readonly collectProcessMetrics: boolean;
}

interface BoundRequestMetrics {
  readonly total: { inc(): void };
  readonly duration: { observe(seconds: number): void };
}

const DURATION_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const SIBLING_BUCKETS = [1, 2, 3, 4, 5, 10, 20, 50, 100];
/** Statuses are bounded by HTTP itself; this bound only guards the cache against a bug. */
const BOUND_CHILDREN_MAX = 1024;

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly requestsTotal: Counter<'operation' | 'status'>;
  private readonly requestDuration: Histogram<'operation'>;
  private readonly siblings: Histogram;
  private readonly siblingsDroppedTotal: Counter;
  private readonly bound = new Map<string, BoundRequestMetrics>();

  constructor(options: MetricsOptions) {
    const registers = [this.registry];
    this.requestsTotal = new Counter({
      name: 'dynamokv_requests_total',
      help: 'Client HTTP requests answered, by operation and HTTP status.',
      labelNames: ['operation', 'status'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'dynamokv_request_duration_seconds',
      help: 'Time from receiving a client request to sending the answer.',
      labelNames: ['operation'],
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    });
    this.siblings = new Histogram({
      name: 'dynamokv_siblings',
      help: 'Number of live siblings a read returned (1 = no conflict).',
      buckets: SIBLING_BUCKETS,
      registers,
    });
    this.siblingsDroppedTotal = new Counter({
      name: 'dynamokv_siblings_dropped_total',
      help: 'Siblings discarded because an object reached maxSiblings.',
      registers,
    });
    new Gauge({
      name: 'dynamokv_storage_bytes',
      help: 'Approximate bytes held by the storage engine.',
      registers,
      async collect() {
        this.set(await options.storageBytes());
      },
    });
    if (options.collectProcessMetrics) collectDefaultMetrics({ register: this.registry });
  }

  requestFinished(operation: Operation, status: number, durationSeconds: number): void {
    const bound = this.boundFor(operation, status);
    bound.total.inc();
    bound.duration.observe(durationSeconds);
  }

  siblingsRead(count: number): void {
    this.siblings.observe(count);
  }

  siblingsDropped(count: number): void {
    this.siblingsDroppedTotal.inc(count);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  private boundFor(operation: Operation, status: number): BoundRequestMetrics {
    const cacheKey = `${operation} ${status}`;
    let bound = this.bound.get(cacheKey);
    if (bound === undefined) {
      bound = {
        total: this.requestsTotal.labels({ operation, status: String(status) }),
        duration: this.requestDuration.labels({ operation }),
      };
      if (this.bound.size < BOUND_CHILDREN_MAX) this.bound.set(cacheKey, bound);
    }
    return bound;
  }
}
