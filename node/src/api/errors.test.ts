/**
 * Every client error of the catalogue, provoked through inject(): each answers its status and
 * code in the catalogue body, and none changes stored data (the engine's bytes are compared
 * before and after every bad request).
 */
import type { InjectOptions } from 'fastify';
import { dataKey } from '../storage/keys';
import { partitionOf } from '../core/partition';
import { buildTestApp, type TestApp } from '../../../test/support/testApp';
import { ContextCodec } from './contextToken';
import { DynamoError, ERROR_CATALOGUE } from './errors';
import { translateStorageErrors, type KeyValueService } from './keyValueService';
import { OverloadedError } from '../storage/objectStore';

const URL_K = '/v1/buckets/b/keys/k';

let t: TestApp;
afterEach(async () => {
  await t.close();
});

async function snapshot(app: TestApp): Promise<string[]> {
  const entries: string[] = [];
  for await (const [key, value] of app.engine.scan({ gte: Uint8Array.of(0), lt: Uint8Array.of(0xff) })) {
    entries.push(`${Buffer.from(key).toString('hex')}=${Buffer.from(value).toString('hex')}`);
  }
  return entries;
}

type Inject = InjectOptions;

/** Sends `request`, checks status + code + body shape, and that storage is byte-for-byte unchanged. */
async function expectRejected(request: Inject, code: keyof typeof ERROR_CATALOGUE) {
  const before = await snapshot(t);
  const response = await t.app.fastify.inject(request);
  expect({ status: response.statusCode, code: response.json().error?.code }).toEqual({ status: ERROR_CATALOGUE[code].status, code });
  expect(response.json()).toEqual({ error: { code, message: expect.any(String) } });
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  expect(await snapshot(t)).toEqual(before);
  return response;
}

describe('bad input is refused before storage', () => {
  let original: string;
  beforeEach(async () => {
    t = await buildTestApp({ maxValueBytes: 64, maxBucketBytes: 8, maxKeyBytes: 16 });
    const put = await t.app.fastify.inject({ method: 'PUT', url: URL_K, payload: 'original' });
    original = put.headers['x-dynamo-context'] as string;
  });

  test('empty or too long bucket -> 400 BUCKET_INVALID (length counted in UTF-8 bytes)', async () => {
    await expectRejected({ method: 'PUT', url: '/v1/buckets//keys/k', payload: 'x' }, 'BUCKET_INVALID');
    await expectRejected({ method: 'PUT', url: '/v1/buckets/123456789/keys/k', payload: 'x' }, 'BUCKET_INVALID');
    // Three characters, nine bytes: over the 8-byte limit.
    await expectRejected({ method: 'PUT', url: `/v1/buckets/${encodeURIComponent('€€€')}/keys/k`, payload: 'x' }, 'BUCKET_INVALID');
    await expectRejected({ method: 'GET', url: '/v1/buckets/%C3%28/keys/k' }, 'BUCKET_INVALID');
  });

  test('empty, too long or non-UTF-8 key -> 400 KEY_INVALID', async () => {
    await expectRejected({ method: 'PUT', url: '/v1/buckets/b/keys/', payload: 'x' }, 'KEY_INVALID');
    await expectRejected({ method: 'PUT', url: `/v1/buckets/b/keys/${'k'.repeat(17)}`, payload: 'x' }, 'KEY_INVALID');
    await expectRejected({ method: 'DELETE', url: `/v1/buckets/b/keys/${'k'.repeat(17)}` }, 'KEY_INVALID');
    await expectRejected({ method: 'PUT', url: '/v1/buckets/b/keys/%FF', payload: 'x' }, 'KEY_INVALID');
  });

  test('a value over maxValueBytes -> 413 VALUE_TOO_LARGE, with or without Content-Length', async () => {
    await expectRejected({ method: 'PUT', url: URL_K, payload: 'x'.repeat(65) }, 'VALUE_TOO_LARGE');
    await expectRejected({ method: 'PUT', url: URL_K, payload: 'x'.repeat(65), headers: { 'transfer-encoding': 'chunked' } }, 'VALUE_TOO_LARGE');
    const atLimit = await t.app.fastify.inject({ method: 'PUT', url: URL_K, payload: 'x'.repeat(64) });
    expect(atLimit.statusCode).toBe(204);
  });

  test('malformed, tampered or foreign contexts -> 400 CONTEXT_INVALID', async () => {
    const foreign = new ContextCodec('another-cluster-secret-000').encode({ t1: 1 });
    const tampered = original.slice(0, -2) + (original.endsWith('AA') ? 'BA' : 'AA');
    for (const context of ['not base64!', 'AAAA', tampered, foreign, 'A'.repeat(9000)]) {
      await expectRejected({ method: 'PUT', url: URL_K, payload: 'x', headers: { 'x-dynamo-context': context } }, 'CONTEXT_INVALID');
      await expectRejected({ method: 'DELETE', url: URL_K, headers: { 'x-dynamo-context': context } }, 'CONTEXT_INVALID');
    }
  });

  test('unknown, repeated or badly valued query parameters -> 400 PARAMETER_INVALID', async () => {
    await expectRejected({ method: 'PUT', url: `${URL_K}?returnbody=yes`, payload: 'x' }, 'PARAMETER_INVALID');
    await expectRejected({ method: 'PUT', url: `${URL_K}?returnBody=true`, payload: 'x' }, 'PARAMETER_INVALID');
    await expectRejected({ method: 'PUT', url: `${URL_K}?returnbody=true&returnbody=false`, payload: 'x' }, 'PARAMETER_INVALID');
    await expectRejected({ method: 'GET', url: `${URL_K}?returnbody=true` }, 'PARAMETER_INVALID');
    await expectRejected({ method: 'DELETE', url: `${URL_K}?force=1` }, 'PARAMETER_INVALID');
  });

  test('an invalid Content-Type -> 400 CONTENT_TYPE_INVALID', async () => {
    for (const type of ['text', 'text/plain; charset', 'bad type/x', `text/${'x'.repeat(300)}`]) {
      await expectRejected({ method: 'PUT', url: URL_K, payload: 'x', headers: { 'content-type': type } }, 'CONTENT_TYPE_INVALID');
    }
  });

  test('a body shorter than its Content-Length -> 400 REQUEST_INVALID', async () => {
    await expectRejected({ method: 'PUT', url: URL_K, payload: 'x', headers: { 'content-length': '5' } }, 'REQUEST_INVALID');
  });

  test('a method the path does not serve -> 405 METHOD_NOT_ALLOWED with Allow, body never read', async () => {
    const post = await expectRejected({ method: 'POST', url: URL_K, payload: 'x'.repeat(1000) }, 'METHOD_NOT_ALLOWED');
    expect(post.headers.allow).toBe('DELETE, GET, PUT');
    for (const method of ['PATCH', 'HEAD', 'OPTIONS'] as const) {
      const response = await t.app.fastify.inject({ method, url: URL_K });
      expect([response.statusCode, response.headers.allow]).toEqual([405, 'DELETE, GET, PUT']);
    }
    const healthz = await expectRejected({ method: 'PUT', url: '/healthz' }, 'METHOD_NOT_ALLOWED');
    expect(healthz.headers.allow).toBe('GET');
  });

  test('an unknown path -> 404 NOT_FOUND', async () => {
    await expectRejected({ method: 'GET', url: '/v2/buckets/b/keys/k' }, 'NOT_FOUND');
    await expectRejected({ method: 'PUT', url: '/v1/buckets/b/keys/a/b', payload: 'x' }, 'NOT_FOUND');
  });

  test('after all of the above the original value is still there', async () => {
    // One data record (kind 0x01); the node's ring record (kind 0x03) is the other entry.
    expect((await snapshot(t)).filter((entry) => entry.startsWith('01'))).toHaveLength(1);
    const read = await t.app.fastify.inject({ method: 'GET', url: URL_K });
    expect([read.statusCode, read.body, read.headers['x-dynamo-context']]).toEqual([200, 'original', original]);
  });
});

/** A service whose calls wait until the test releases them, counting how many arrived. */
function blockingService(local: KeyValueService) {
  const state = { calls: 0, release: () => undefined as void };
  const gate = new Promise<void>((resolve) => {
    state.release = resolve;
  });
  const service: KeyValueService = {
    get: async (...args) => {
      state.calls++;
      await gate;
      return local.get(...args);
    },
    put: async (...args) => {
      state.calls++;
      await gate;
      return local.put(...args);
    },
    delete: (...args) => local.delete(...args),
  };
  return { state, service };
}

test('above maxInFlightRequests -> 503 OVERLOADED with Retry-After, without calling the service', async () => {
  let blocking: ReturnType<typeof blockingService> | undefined;
  t = await buildTestApp({
    maxInFlightRequests: 1,
    service: (local) => {
      blocking = blockingService(local);
      return blocking.service;
    },
  });
  const first = t.app.fastify.inject({ method: 'PUT', url: URL_K, payload: 'slow' });
  while (blocking!.state.calls === 0) await new Promise((resolve) => setImmediate(resolve));
  expect(t.app.inFlightRequests()).toBe(1);

  const refused = await expectRejected({ method: 'PUT', url: URL_K, payload: 'refused' }, 'OVERLOADED');
  expect(refused.headers['retry-after']).toBe('1');
  expect(blocking!.state.calls).toBe(1);
  // Probes and metrics stay available under overload.
  expect((await t.app.fastify.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

  blocking!.state.release();
  expect((await first).statusCode).toBe(204);
  await new Promise((resolve) => setImmediate(resolve));
  expect(t.app.inFlightRequests()).toBe(0);
  expect((await t.app.fastify.inject({ method: 'GET', url: URL_K })).body).toBe('slow');
});

test('a node shutting down refuses key requests with 503 OVERLOADED and /readyz turns 503', async () => {
  t = await buildTestApp();
  t.app.beginShutdown();
  const refused = await expectRejected({ method: 'PUT', url: URL_K, payload: 'x' }, 'OVERLOADED');
  expect(refused.headers.connection).toBe('close');
  expect((await t.app.fastify.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
});

test('a stored object that fails its checksum: the write answers 500 STORAGE_CORRUPT, the read 503, bytes left alone', async () => {
  t = await buildTestApp();
  await t.app.fastify.inject({ method: 'PUT', url: URL_K, payload: 'v' });
  const rawKey = dataKey(partitionOf('b', 'k', 16), 'b', 'k');
  const stored = (await t.engine.get(rawKey))!;
  const corrupt = Uint8Array.from(stored);
  corrupt[corrupt.length - 1]! ^= 0xff;
  await t.engine.put(rawKey, corrupt);

  // A read counts a replica whose copy fails its check as a failed replica (others may answer);
  // here it is the only one, so the read quorum fails. The coordinator's own write cannot merge
  // into a corrupt copy and says so.
  const read = await expectRejected({ method: 'GET', url: URL_K }, 'QUORUM_UNAVAILABLE');
  expect(read.json().error.message).toMatch(/integrity|checksum|corrupt/i);
  await expectRejected({ method: 'PUT', url: URL_K, payload: 'over it' }, 'STORAGE_CORRUPT');
});

test('a key with too many queued writes (ObjectStore OverloadedError) -> OVERLOADED', async () => {
  t = await buildTestApp();
  const error = await translateStorageErrors(() => Promise.reject(new OverloadedError(16))).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(DynamoError);
  expect((error as DynamoError).code).toBe('OVERLOADED');
});

test('an unexpected failure -> 500 INTERNAL without leaking its message', async () => {
  t = await buildTestApp({
    service: (local) => ({ ...local, get: async () => Promise.reject(new Error('secret detail')), put: local.put.bind(local), delete: local.delete.bind(local) }),
  });
  const response = await expectRejected({ method: 'GET', url: URL_K }, 'INTERNAL');
  expect(response.body).not.toContain('secret detail');
});

describe('with an auth token', () => {
  beforeEach(async () => {
    t = await buildTestApp({ authToken: 'a-long-enough-test-token' });
  });

  test('no token or an unknown one -> 401 UNAUTHORIZED with WWW-Authenticate', async () => {
    const missing = await expectRejected({ method: 'PUT', url: URL_K, payload: 'x' }, 'UNAUTHORIZED');
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    const unknown = await expectRejected({ method: 'PUT', url: URL_K, payload: 'x', headers: { authorization: 'Bearer wrong' } }, 'UNAUTHORIZED');
    expect(unknown.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    await expectRejected({ method: 'GET', url: '/v1/status', headers: { authorization: 'Basic abc' } }, 'UNAUTHORIZED');
  });

  test('the right token is accepted; probes and metrics need none', async () => {
    const put = await t.app.fastify.inject({ method: 'PUT', url: URL_K, payload: 'x', headers: { authorization: 'Bearer a-long-enough-test-token' } });
    expect(put.statusCode).toBe(204);
    for (const url of ['/healthz', '/readyz', '/metrics', '/v1/openapi.json']) {
      expect((await t.app.fastify.inject({ method: 'GET', url })).statusCode).toBe(200);
    }
  });
});
