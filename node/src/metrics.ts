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

/**
 * Why a request was refused as overloaded before any work: `full`, maxInFlightRequests were in
 * flight; `delay`, the node was shedding on queueing delay (api/admission.ts).
 */
export type ShedReason = 'full' | 'delay';

/** The client load as the app sees it, read at scrape time. */
export interface LoadState {
  readonly inFlight: number;
  /** What the node holds at once now: maxInFlightRequests, or less while it sheds load. */
  readonly inFlightLimit: number;
  /** The latest sample of the event loop's queueing delay (0 when shedding is off). */
  readonly queueDelayMs: number;
  readonly overloaded: boolean;
}

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
  private readonly shedTotal: Counter<'reason'>;
  private readonly shedByReason: Record<ShedReason, { inc(): void }>;
  private loadSource: (() => LoadState) | undefined;

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
    this.shedTotal = new Counter({
      name: 'dynamokv_requests_shed_total',
      help: 'Client requests refused with 503 OVERLOADED before any work: reason "full" (maxInFlightRequests in flight) or "delay" (above the in-flight limit the node lowered because requests waited longer than queueDelayTargetMs).',
      labelNames: ['reason'],
      registers,
    });
    this.shedByReason = { full: this.shedTotal.labels({ reason: 'full' }), delay: this.shedTotal.labels({ reason: 'delay' }) };
    // Both series exist from the start, so a rate() over them is 0 rather than absent.
    for (const reason of ['full', 'delay'] as const) this.shedTotal.inc({ reason }, 0);
    const load = (): LoadState | undefined => this.loadSource?.();
    new Gauge({
      name: 'dynamokv_requests_in_flight',
      help: 'Client requests admitted and not yet answered.',
      registers,
      collect() {
        this.set(load()?.inFlight ?? 0);
      },
    });
    new Gauge({
      name: 'dynamokv_request_queue_delay_seconds',
      help: 'How long a newly arrived request waits for the node\'s event loop: the latest sample (0 when shedding on queueing delay is off).',
      registers,
      collect() {
        this.set((load()?.queueDelayMs ?? 0) / 1000);
      },
    });
    new Gauge({
      name: 'dynamokv_requests_in_flight_limit',
      help: 'Client requests the node holds at once now: maxInFlightRequests, or less while it sheds load because requests wait longer than queueDelayTargetMs.',
      registers,
      collect() {
        this.set(load()?.inFlightLimit ?? 0);
      },
    });
    new Gauge({
      name: 'dynamokv_overloaded',
      help: '1 from a standing queue (queueing delay above queueDelayTargetMs for queueDelayIntervalMs) until the delay is under the target again, else 0.',
      registers,
      collect() {
        this.set(load()?.overloaded === true ? 1 : 0);
      },
    });
    if (options.collectProcessMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Where the load gauges read from; set once the app exists. */
  observeLoad(source: () => LoadState): void {
    this.loadSource = source;
  }

  requestShed(reason: ShedReason): void {
    this.shedByReason[reason].inc();
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
