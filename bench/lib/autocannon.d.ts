/**
 * The part of autocannon's programmatic API the benchmarks use. autocannon ships no type
 * declarations; writing the few we need here avoids another dependency (@types/autocannon).
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface RequestParams {
      method: string;
      path: string;
      headers: Record<string, string>;
      body?: Buffer | string;
    }

    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: Buffer | string;
      /** Called before every request; returning the (modified) request sends it. */
      setupRequest?: (request: RequestParams, context: Record<string, unknown>) => RequestParams;
      /** Called with every response of this request, before the instance's 'response' event. */
      onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>) => void;
    }

    interface Options {
      url: string;
      connections?: number;
      duration?: number;
      pipelining?: number;
      timeout?: number;
      method?: string;
      headers?: Record<string, string>;
      body?: Buffer | string;
      requests?: Request[];
      title?: string;
    }

    interface Histogram {
      average: number;
      p50: number;
      p99: number;
      p99_9: number;
      max: number;
    }

    interface Result {
      duration: number;
      errors: number;
      timeouts: number;
      non2xx: number;
      latency: Histogram;
      requests: Histogram & { total: number };
      statusCodeStats: Record<string, { count: number }>;
    }

    interface Instance extends EventEmitter {
      stop(): void;
      on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void): this;
      on(event: 'done', listener: (result: Result) => void): this;
      on(event: 'reqError' | 'error', listener: (error: Error) => void): this;
    }
  }

  function autocannon(options: autocannon.Options, callback: (error: Error | null, result: autocannon.Result) => void): autocannon.Instance;

  export = autocannon;
}
