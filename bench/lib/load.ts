/**
 * Closed-loop key-value load with autocannon: a fixed number of connections, each sending its next
 * request as soon as the previous answer arrived, keys drawn uniformly at random, 1 KiB values.
 *
 * Latencies are recorded here, in microseconds, into our own HDR histogram: autocannon's own
 * histogram rounds to whole milliseconds, which hides everything interesting on loopback.
 *
 * Writes carry the newest context seen for the same key (as a real client would), so keys do not
 * pile up siblings during a run; see `ContextCache`. Against a cluster the connections are spread
 * over several nodes (`baseUrls`), one autocannon instance per node, all in one measured phase;
 * with `keysByUrl` each node gets only requests for keys it is a replica of (routing.ts).
 */
import autocannon from 'autocannon';
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';

export type Operation = 'get' | 'put';

export const CONTEXT_HEADER = 'x-dynamo-context';
/** A bound on cached contexts, so a huge --keys cannot grow the benchmark's own memory unchecked. */
const CONTEXTS_MAX = 1_000_000;
const LATENCY_US_MAX = 60_000_000;

export interface LoadSpec {
  /**
   * Base URLs of the server's client API, e.g. ['http://127.0.0.1:8080']; the connections are
   * spread evenly over them (the first ones get the remainder).
   */
  baseUrls: readonly string[];
  bucket: string;
  keys: number;
  valueBytes: number;
  connections: number;
  durationSec: number;
  /** Fraction of requests that are GETs (0 = only PUTs, 1 = only GETs, 0.5 = the cluster mix). */
  getFraction: number;
  contexts: ContextCache;
  /**
   * Partition-aware routing (routing.ts): keysByUrl[i] lists the key indices the connections to
   * baseUrls[i] draw from (the keys that node is a replica of). Absent: every connection draws
   * from all keys, and requests land on any node.
   */
  keysByUrl?: readonly (readonly number[])[];
}

export interface OperationStats {
  requests: number;
  /** Requests answered with the expected status (2xx, and 300 for a GET of siblings). */
  ok: number;
  /** GETs answered 300 Multiple Choices: the key had siblings when it was read. */
  siblingReads: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  meanMs: number;
}

export interface LoadResult {
  durationSec: number;
  /** Answered requests per second, all operations together. */
  throughputRps: number;
  errors: number;
  timeouts: number;
  statusCounts: Record<string, number>;
  byOperation: Partial<Record<Operation, OperationStats>>;
  all: OperationStats;
}

/** The newest context seen per key, so a benchmark's writes replace rather than add siblings. */
export class ContextCache {
  private readonly contexts = new Map<string, string>();

  get(key: string): string | undefined {
    return this.contexts.get(key);
  }

  set(key: string, context: string | undefined): void {
    if (context === undefined || context.length === 0) return;
    if (!this.contexts.has(key) && this.contexts.size >= CONTEXTS_MAX) return;
    this.contexts.set(key, context);
  }
}

export function keyName(index: number): string {
  return `k${index}`;
}

export function keyPath(bucket: string, key: string): string {
  return `/v1/buckets/${encodeURIComponent(bucket)}/keys/${encodeURIComponent(key)}`;
}

function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_US_MAX, numberOfSignificantValueDigits: 3 });
}

interface Counts {
  requests: number;
  ok: number;
  siblingReads: number;
}

function summarize(histogram: hdr.Histogram, counts: Counts): OperationStats {
  const ms = (us: number): number => us / 1000;
  return {
    ...counts,
    p50Ms: ms(histogram.getValueAtPercentile(50)),
    p99Ms: ms(histogram.getValueAtPercentile(99)),
    p999Ms: ms(histogram.getValueAtPercentile(99.9)),
    meanMs: ms(histogram.mean),
  };
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function isExpectedStatus(operation: Operation, status: number): boolean {
  return (status >= 200 && status < 300) || (operation === 'get' && status === 300);
}

/** What every autocannon instance of one phase records into; they all run in this process. */
interface Recorder {
  readonly histograms: Record<Operation, hdr.Histogram>;
  readonly counts: Record<Operation, Counts>;
}

/** `connections` spread over `targets`: equal shares, the first ones take the remainder. */
export function connectionShares(connections: number, targets: number): number[] {
  const base = Math.floor(connections / targets);
  return Array.from({ length: targets }, (_, index) => base + (index < connections % targets ? 1 : 0));
}

/**
 * The one request template of an instance: a random key and operation per request, the cached
 * context on PUTs, and the newest context taken from every successful answer (a GET of siblings
 * included, so the next PUT resolves them).
 */
function requestTemplate(spec: LoadSpec, keyIndices: readonly number[] | undefined, value: Buffer, recorder: Recorder, handover: { answered: Operation }): autocannon.Request {
  return {
    setupRequest: (params, context) => {
      const key = keyName(keyIndices === undefined ? Math.floor(Math.random() * spec.keys) : (keyIndices[Math.floor(Math.random() * keyIndices.length)] ?? 0));
      const operation: Operation = Math.random() < spec.getFraction ? 'get' : 'put';
      context['key'] = key;
      context['operation'] = operation;
      const headers: Record<string, string> = {};
      if (operation === 'put') {
        headers['content-type'] = 'application/octet-stream';
        const known = spec.contexts.get(key);
        if (known !== undefined) headers[CONTEXT_HEADER] = known;
      }
      return { ...params, method: operation === 'get' ? 'GET' : 'PUT', path: keyPath(spec.bucket, key), headers, body: operation === 'put' ? value : Buffer.alloc(0) };
    },
    onResponse: (status, _body, context, headers) => {
      const operation: Operation = context['operation'] === 'put' ? 'put' : 'get';
      handover.answered = operation;
      const counts = recorder.counts[operation];
      counts.requests += 1;
      if (!isExpectedStatus(operation, status)) return;
      counts.ok += 1;
      if (status === 300) counts.siblingReads += 1;
      spec.contexts.set(String(context['key']), firstHeader(headers[CONTEXT_HEADER]));
    },
  };
}

/** One autocannon instance against one base URL, recording into `recorder`. */
function runInstance(url: string, connections: number, spec: LoadSpec, keyIndices: readonly number[] | undefined, value: Buffer, recorder: Recorder, signal: AbortSignal): Promise<autocannon.Result> {
  // autocannon calls a request's onResponse and then, synchronously, emits 'response' with the
  // latency, for the same client; the operation of the answered request is handed over here.
  const handover: { answered: Operation } = { answered: 'get' };
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url, connections, duration: spec.durationSec, pipelining: 1, timeout: 10, requests: [requestTemplate(spec, keyIndices, value, recorder, handover)] },
      (error, result) => {
        signal.removeEventListener('abort', stop);
        if (error === null) resolve(result);
        else reject(error);
      },
    );
    instance.on('response', (_client, _status, _bytes, responseTimeMs) => {
      recorder.histograms[handover.answered].recordValue(Math.max(1, Math.round(responseTimeMs * 1000)));
    });
    const stop = (): void => instance.stop();
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
}

function combine(results: readonly autocannon.Result[], recorder: Recorder): LoadResult {
  const durationSec = Math.max(0, ...results.map((r) => r.duration));
  const statusCounts: Record<string, number> = {};
  for (const result of results) {
    for (const [status, stat] of Object.entries(result.statusCodeStats)) statusCounts[status] = (statusCounts[status] ?? 0) + Number(stat.count);
  }
  const all = newHistogram();
  const allCounts: Counts = { requests: 0, ok: 0, siblingReads: 0 };
  const byOperation: LoadResult['byOperation'] = {};
  for (const operation of ['get', 'put'] as const) {
    const counts = recorder.counts[operation];
    all.add(recorder.histograms[operation]);
    allCounts.requests += counts.requests;
    allCounts.ok += counts.ok;
    allCounts.siblingReads += counts.siblingReads;
    if (counts.requests > 0) byOperation[operation] = summarize(recorder.histograms[operation], counts);
  }
  return {
    durationSec,
    throughputRps: durationSec > 0 ? allCounts.requests / durationSec : 0,
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    timeouts: results.reduce((sum, r) => sum + r.timeouts, 0),
    statusCounts,
    byOperation,
    all: summarize(all, allCounts),
  };
}

/**
 * Runs one closed-loop load phase, its connections spread over `spec.baseUrls`, and resolves with
 * the figures of all of them together. `signal` stops it early; so does a failure of any instance.
 */
export async function runLoad(spec: LoadSpec, signal?: AbortSignal): Promise<LoadResult> {
  if (spec.baseUrls.length === 0) throw new Error('runLoad needs at least one base URL');
  if (spec.keysByUrl !== undefined && spec.keysByUrl.length !== spec.baseUrls.length) throw new Error('keysByUrl needs one key list per base URL');
  const recorder: Recorder = {
    histograms: { get: newHistogram(), put: newHistogram() },
    counts: { get: { requests: 0, ok: 0, siblingReads: 0 }, put: { requests: 0, ok: 0, siblingReads: 0 } },
  };
  const value = Buffer.alloc(spec.valueBytes, 0x62);
  const stopAll = new AbortController();
  const onOuterAbort = (): void => stopAll.abort();
  if (signal?.aborted === true) stopAll.abort();
  else signal?.addEventListener('abort', onOuterAbort, { once: true });
  const shares = connectionShares(spec.connections, spec.baseUrls.length);
  try {
    const results = await Promise.all(
      spec.baseUrls.flatMap((url, index) => {
        const connections = shares[index] ?? 0;
        if (connections === 0) return [];
        return [runInstance(url, connections, spec, spec.keysByUrl?.[index], value, recorder, stopAll.signal).catch((error: unknown) => {
          stopAll.abort();
          throw error;
        })];
      }),
    );
    return combine(results, recorder);
  } finally {
    signal?.removeEventListener('abort', onOuterAbort);
  }
}

/**
 * Writes every key once (bounded concurrency, undici keep-alive pools) so GETs find values and
 * later PUTs start from a known context; worker i writes through base URL i mod n. Fails on the
 * first unexpected status; `signal` stops it between requests.
 */
export async function preload(spec: Pick<LoadSpec, 'baseUrls' | 'bucket' | 'keys' | 'valueBytes' | 'contexts'>, signal?: AbortSignal, concurrency = 32): Promise<void> {
  const pools = spec.baseUrls.map((url) => new Pool(url, { connections: Math.ceil(concurrency / spec.baseUrls.length) }));
  const value = Buffer.alloc(spec.valueBytes, 0x63);
  let next = 0;
  const worker = async (pool: Pool): Promise<void> => {
    while (next < spec.keys && signal?.aborted !== true) {
      const key = keyName(next++);
      const known = spec.contexts.get(key);
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (known !== undefined) headers[CONTEXT_HEADER] = known;
      const response = await pool.request({ method: 'PUT', path: keyPath(spec.bucket, key), headers, body: value });
      const text = await response.body.text();
      if (response.statusCode < 200 || response.statusCode >= 300) {
        throw new Error(`preload PUT ${key} answered ${response.statusCode}: ${text.slice(0, 200)}`);
      }
      spec.contexts.set(key, firstHeader(response.headers[CONTEXT_HEADER]));
    }
  };
  try {
    const workers = Math.min(concurrency, Math.max(1, spec.keys));
    await Promise.all(Array.from({ length: workers }, (_, index) => worker(pools[index % pools.length] as Pool)));
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
  }
}
