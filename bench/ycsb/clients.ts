/**
 * One key-value client interface over every target of the YCSB suite, so the driver does not
 * know what it drives: dynamokv and the bare node:http server (HTTP key API, undici keep-alive
 * Pools), etcd (its JSON gateway, POST /v3/kv/put and /v3/kv/range) and Redis (GET/SET, resp.ts).
 *
 * Contexts are dynamokv's: a read returns the X-Dynamo-Context of the answer and an update may
 * carry one, so a write replaces what was read instead of adding a sibling. The other targets
 * ignore them; for them a read-modify-write is a plain get followed by a plain put.
 */
import { Pool } from 'undici';
import { CONTEXT_HEADER, keyPath } from '../lib/load';
import { RespPool } from './resp';

export const BUCKET = 'ycsb';
/** Past this a request counts as failed (--timeout-ms); the open-loop drain is bounded separately. */
export const REQUEST_TIMEOUT_MS_DEFAULT = 10_000;

export interface ReadOutcome {
  ok: boolean;
  /** The target refused the operation as overloaded (dynamokv: 503), without doing it. */
  refused?: boolean;
  /** The context to write back with, where the target has contexts. */
  context?: string;
}

export interface KvClient {
  read(key: string): Promise<ReadOutcome>;
  /** ok when the write was acknowledged; the context is the new one, where the target has them. */
  update(key: string, value: Buffer, context?: string): Promise<ReadOutcome>;
  close(): Promise<void>;
}

/** Several endpoints of one target used in turn, so every node or member coordinates its share. */
class RoundRobin<T> {
  private next = 0;
  constructor(readonly items: readonly T[]) {
    if (items.length === 0) throw new Error('a target needs at least one endpoint');
  }
  pick(): T {
    const item = this.items[this.next] as T;
    this.next = (this.next + 1) % this.items.length;
    return item;
  }
}

function poolsFor(baseUrls: readonly string[], connections: number, timeoutMs: number): RoundRobin<Pool> {
  const perEndpoint = Math.max(1, Math.ceil(connections / baseUrls.length));
  return new RoundRobin(baseUrls.map((url) => new Pool(url, {
    connections: perEndpoint,
    pipelining: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  })));
}

async function closePools(pools: RoundRobin<Pool>): Promise<void> {
  // destroy, not close: close waits for queued requests, which an aborted run may never finish.
  await Promise.all(pools.items.map((pool) => pool.destroy().catch(() => undefined)));
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** dynamokv's key API, which the bare server imitates (it answers every GET and PUT). */
export class DynamoHttpClient implements KvClient {
  private readonly pools: RoundRobin<Pool>;

  constructor(baseUrls: readonly string[], connections: number, timeoutMs = REQUEST_TIMEOUT_MS_DEFAULT) {
    this.pools = poolsFor(baseUrls, connections, timeoutMs);
  }

  async read(key: string): Promise<ReadOutcome> {
    const response = await this.pools.pick().request({ method: 'GET', path: keyPath(BUCKET, key) });
    await response.body.dump();
    // 300 Multiple Choices is a successful read of siblings; its context resolves them on write.
    const ok = (response.statusCode >= 200 && response.statusCode < 300) || response.statusCode === 300;
    return { ok, refused: response.statusCode === 503, context: firstHeader(response.headers[CONTEXT_HEADER]) };
  }

  async update(key: string, value: Buffer, context?: string): Promise<ReadOutcome> {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (context !== undefined && context.length > 0) headers[CONTEXT_HEADER] = context;
    const response = await this.pools.pick().request({ method: 'PUT', path: keyPath(BUCKET, key), headers, body: value });
    await response.body.dump();
    return { ok: response.statusCode >= 200 && response.statusCode < 300, refused: response.statusCode === 503, context: firstHeader(response.headers[CONTEXT_HEADER]) };
  }

  close(): Promise<void> {
    return closePools(this.pools);
  }
}

/**
 * etcd through its JSON/gRPC gateway, as the reference baselines measured it: keys and values in
 * base64, linearizable ranges (etcd's default; the fair match for a quorum read). A put counts
 * when the answer is 200 with a `header`, a range when it is 200 with `kvs`.
 */
export class EtcdClient implements KvClient {
  private readonly pools: RoundRobin<Pool>;
  private readonly encodedValues = new WeakMap<Buffer, string>();

  constructor(baseUrls: readonly string[], connections: number, timeoutMs = REQUEST_TIMEOUT_MS_DEFAULT) {
    this.pools = poolsFor(baseUrls, connections, timeoutMs);
  }

  private async post(path: string, body: string): Promise<{ status: number; text: string }> {
    const response = await this.pools.pick().request({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body });
    return { status: response.statusCode, text: await response.body.text() };
  }

  async read(key: string): Promise<ReadOutcome> {
    const answer = await this.post('/v3/kv/range', JSON.stringify({ key: Buffer.from(`${BUCKET}/${key}`).toString('base64') }));
    return { ok: answer.status === 200 && answer.text.includes('"kvs"') };
  }

  async update(key: string, value: Buffer): Promise<ReadOutcome> {
    let encoded = this.encodedValues.get(value);
    if (encoded === undefined) {
      encoded = value.toString('base64');
      this.encodedValues.set(value, encoded);
    }
    const body = JSON.stringify({ key: Buffer.from(`${BUCKET}/${key}`).toString('base64'), value: encoded });
    const answer = await this.post('/v3/kv/put', body);
    return { ok: answer.status === 200 && answer.text.includes('header') };
  }

  close(): Promise<void> {
    return closePools(this.pools);
  }
}

export class RedisClient implements KvClient {
  private constructor(private readonly pool: RespPool) {}

  static async open(host: string, port: number, connections: number): Promise<RedisClient> {
    return new RedisClient(await RespPool.open(host, port, connections));
  }

  async read(key: string): Promise<ReadOutcome> {
    const reply = await this.pool.command(['GET', `${BUCKET}/${key}`]);
    return { ok: Buffer.isBuffer(reply) };
  }

  async update(key: string, value: Buffer): Promise<ReadOutcome> {
    return { ok: (await this.pool.command(['SET', `${BUCKET}/${key}`, value])) === 'OK' };
  }

  async close(): Promise<void> {
    this.pool.close();
  }
}
