/**
 * Closed-loop key-value load with autocannon: a fixed number of connections, each sending its next
 * request as soon as the previous answer arrived, keys drawn uniformly at random, 1 KiB values.
 *
 * Latencies are recorded here, in microseconds, into our own HDR histogram: autocannon's own
 * histogram rounds to whole milliseconds, which hides everything interesting on loopback.
 *
 * Writes carry the context of the last write to the same key (as a real client would), so keys
 * do not pile up siblings during a run; see `ContextCache`.
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
  /** Base URL of the server, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  bucket: string;
  keys: number;
  valueBytes: number;
  connections: number;
  durationSec: number;
  /** Fraction of requests that are GETs (0 = only PUTs, 1 = only GETs, 0.5 = the cluster mix). */
  getFraction: number;
  contexts: ContextCache;
}

export interface OperationStats {
  requests: number;
  /** Requests answered with the expected status (2xx, and 300 for a GET of siblings). */
  ok: number;
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

function summarize(histogram: hdr.Histogram, requests: number, ok: number): OperationStats {
  const ms = (us: number): number => us / 1000;
  return {
    requests,
    ok,
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

/** Runs one closed-loop load phase and resolves with its figures. `signal` stops it early. */
export function runLoad(spec: LoadSpec, signal?: AbortSignal): Promise<LoadResult> {
  const value = Buffer.alloc(spec.valueBytes, 0x62);
  const histograms = { get: newHistogram(), put: newHistogram() };
  const counts = { get: { requests: 0, ok: 0 }, put: { requests: 0, ok: 0 } };
  // autocannon calls a request's onResponse and then, synchronously, emits 'response' with the
  // latency, for the same client; the operation of the answered request is handed over here.
  let answered: Operation = 'get';

  const request: autocannon.Request = {
    setupRequest: (params, context) => {
      const key = keyName(Math.floor(Math.random() * spec.keys));
      const operation: Operation = Math.random() < spec.getFraction ? 'get' : 'put';
      context['key'] = key;
      context['operation'] = operation;
      const headers: Record<string, string> = {};
      const known = spec.contexts.get(key);
      if (operation === 'put') {
        headers['content-type'] = 'application/octet-stream';
        if (known !== undefined) headers[CONTEXT_HEADER] = known;
      }
      return { ...params, method: operation === 'get' ? 'GET' : 'PUT', path: keyPath(spec.bucket, key), headers, body: operation === 'put' ? value : Buffer.alloc(0) };
    },
    onResponse: (status, _body, context, headers) => {
      answered = context['operation'] === 'put' ? 'put' : 'get';
      if (answered === 'put' && status === 204) spec.contexts.set(String(context['key']), firstHeader(headers[CONTEXT_HEADER]));
      counts[answered].requests += 1;
      if (isExpectedStatus(answered, status)) counts[answered].ok += 1;
    },
  };

  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url: spec.baseUrl, connections: spec.connections, duration: spec.durationSec, pipelining: 1, timeout: 10, requests: [request] },
      (error, result) => {
        signal?.removeEventListener('abort', stop);
        if (error !== null) {
          reject(error);
          return;
        }
        const all = newHistogram();
        all.add(histograms.get);
        all.add(histograms.put);
        const byOperation: LoadResult['byOperation'] = {};
        for (const operation of ['get', 'put'] as const) {
          if (counts[operation].requests > 0) byOperation[operation] = summarize(histograms[operation], counts[operation].requests, counts[operation].ok);
        }
        const statusCounts: Record<string, number> = {};
        for (const [status, stat] of Object.entries(result.statusCodeStats)) statusCounts[status] = Number(stat.count);
        const total = counts.get.requests + counts.put.requests;
        resolve({
          durationSec: result.duration,
          throughputRps: result.duration > 0 ? total / result.duration : 0,
          errors: result.errors,
          timeouts: result.timeouts,
          statusCounts,
          byOperation,
          all: summarize(all, total, counts.get.ok + counts.put.ok),
        });
      },
    );
    instance.on('response', (_client, _status, _bytes, responseTimeMs) => {
      histograms[answered].recordValue(Math.max(1, Math.round(responseTimeMs * 1000)));
    });
    const stop = (): void => instance.stop();
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/**
 * Writes every key once (bounded concurrency, undici keep-alive pool) so GETs find values and
 * later PUTs start from a known context. Fails on the first unexpected status.
 */
export async function preload(spec: Pick<LoadSpec, 'baseUrl' | 'bucket' | 'keys' | 'valueBytes' | 'contexts'>, concurrency = 32): Promise<void> {
  const pool = new Pool(spec.baseUrl, { connections: concurrency });
  const value = Buffer.alloc(spec.valueBytes, 0x63);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < spec.keys) {
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
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, spec.keys)) }, () => worker()));
  } finally {
    await pool.close();
  }
}
