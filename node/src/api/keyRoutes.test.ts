/**
 * The key routes' Dynamo semantics over inject() and an in-memory engine: siblings from
 * concurrent blind writes, a write with a read's context replacing exactly what it saw,
 * tombstones that answer 404 with a context, and ?returnbody.
 */
import { buildTestApp, type TestApp } from '../../../test/support/testApp';

const URL_K = '/v1/buckets/b/keys/k';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

async function put(url: string, value: string, headers: Record<string, string> = {}) {
  return t.app.fastify.inject({ method: 'PUT', url, payload: value, headers });
}

async function get(url: string) {
  return t.app.fastify.inject({ method: 'GET', url });
}

interface SiblingsJson {
  context: string;
  siblings: { value: string; contentType: string; lastModified: string }[];
}

test('two puts without a context become siblings: GET answers 300 with both values', async () => {
  expect((await put(URL_K, 'one', { 'content-type': 'text/plain' })).statusCode).toBe(204);
  t.clock.nowMs += 1000;
  expect((await put(URL_K, 'two')).statusCode).toBe(204);

  const read = await get(URL_K);
  expect(read.statusCode).toBe(300);
  expect(read.headers['content-type']).toMatch(/^application\/json/);
  const body = read.json<SiblingsJson>();
  expect(body.context).toBe(read.headers['x-dynamo-context']);
  const values = body.siblings.map((s) => [Buffer.from(s.value, 'base64').toString(), s.contentType, s.lastModified]);
  expect(values).toEqual([
    ['one', 'text/plain', '2026-11-25T12:00:00.000Z'],
    ['two', 'application/octet-stream', '2026-11-25T12:00:01.000Z'],
  ]);
});

test('a put with the siblings context replaces both: GET answers 200 with the one value', async () => {
  await put(URL_K, 'one');
  await put(URL_K, 'two');
  const context = (await get(URL_K)).headers['x-dynamo-context'] as string;

  const resolved = await put(URL_K, 'merged', { 'x-dynamo-context': context, 'content-type': 'text/plain; charset=utf-8' });
  expect(resolved.statusCode).toBe(204);
  expect(resolved.headers['x-dynamo-context']).toMatch(/^[A-Za-z0-9_-]+$/);

  const read = await get(URL_K);
  expect(read.statusCode).toBe(200);
  expect(read.body).toBe('merged');
  expect(read.headers['content-type']).toBe('text/plain; charset=utf-8');
  expect(read.headers['x-dynamo-context']).toBe(resolved.headers['x-dynamo-context']);
});

test('a put with an older context keeps the values that context did not see', async () => {
  const first = await put(URL_K, 'one');
  await put(URL_K, 'two');
  await put(URL_K, 'three', { 'x-dynamo-context': first.headers['x-dynamo-context'] as string });

  const body = (await get(URL_K)).json<SiblingsJson>();
  expect(body.siblings.map((s) => Buffer.from(s.value, 'base64').toString())).toEqual(['two', 'three']);
});

test('values are bytes: any body round-trips exactly, with application/octet-stream by default', async () => {
  const bytes = Buffer.from([0, 1, 2, 255, 254, 0x7b, 0x22]);
  await t.app.fastify.inject({ method: 'PUT', url: URL_K, payload: bytes });
  const read = await get(URL_K);
  expect(read.statusCode).toBe(200);
  expect(read.headers['content-type']).toBe('application/octet-stream');
  expect(read.rawPayload.equals(bytes)).toBe(true);
});

test('an empty body stores an empty value', async () => {
  expect((await t.app.fastify.inject({ method: 'PUT', url: URL_K })).statusCode).toBe(204);
  const read = await get(URL_K);
  expect(read.statusCode).toBe(200);
  expect(read.rawPayload.length).toBe(0);
});

test('a JSON body is stored as given, not parsed', async () => {
  await put(URL_K, '{"a": 1,  "b":[2]}', { 'content-type': 'application/json' });
  const read = await get(URL_K);
  expect(read.body).toBe('{"a": 1,  "b":[2]}');
  expect(read.headers['content-type']).toBe('application/json');
});

test('an absent key answers 404 KEY_NOT_FOUND without a context', async () => {
  const read = await get('/v1/buckets/b/keys/never');
  expect(read.statusCode).toBe(404);
  expect(read.json()).toEqual({ error: { code: 'KEY_NOT_FOUND', message: expect.any(String) } });
  expect(read.headers['x-dynamo-context']).toBeUndefined();
});

test('delete with the read context -> 404 with a context; a put with that context -> 200 alone', async () => {
  const written = await put(URL_K, 'v1');
  const deleted = await t.app.fastify.inject({ method: 'DELETE', url: URL_K, headers: { 'x-dynamo-context': written.headers['x-dynamo-context'] as string } });
  expect(deleted.statusCode).toBe(204);
  expect(deleted.body).toBe('');

  const gone = await get(URL_K);
  expect(gone.statusCode).toBe(404);
  expect(gone.json().error.code).toBe('KEY_NOT_FOUND');
  const tombstoneContext = gone.headers['x-dynamo-context'] as string;
  expect(tombstoneContext).toBe(deleted.headers['x-dynamo-context']);

  await put(URL_K, 'v2', { 'x-dynamo-context': tombstoneContext });
  const back = await get(URL_K);
  expect(back.statusCode).toBe(200);
  expect(back.body).toBe('v2');
});

test('a delete without a context does not hide a value it never saw (the value stays readable)', async () => {
  await put(URL_K, 'v1');
  await t.app.fastify.inject({ method: 'DELETE', url: URL_K });
  const read = await get(URL_K);
  expect(read.statusCode).toBe(200);
  expect(read.body).toBe('v1');
});

test('delete of an absent key answers 204 and leaves a tombstone', async () => {
  const deleted = await t.app.fastify.inject({ method: 'DELETE', url: '/v1/buckets/b/keys/ghost' });
  expect(deleted.statusCode).toBe(204);
  const read = await get('/v1/buckets/b/keys/ghost');
  expect(read.statusCode).toBe(404);
  expect(read.headers['x-dynamo-context']).toBe(deleted.headers['x-dynamo-context']);
});

test('?returnbody=true answers as GET does: 200 for one value, 300 for siblings', async () => {
  const one = await put(`${URL_K}?returnbody=true`, 'one', { 'content-type': 'text/plain' });
  expect(one.statusCode).toBe(200);
  expect(one.body).toBe('one');
  expect(one.headers['content-type']).toBe('text/plain');
  expect(one.headers['x-dynamo-context']).toBeDefined();

  const two = await put(`${URL_K}?returnbody=true`, 'two');
  expect(two.statusCode).toBe(300);
  expect(two.json<SiblingsJson>().siblings).toHaveLength(2);

  const off = await put(`${URL_K}?returnbody=false`, 'three');
  expect(off.statusCode).toBe(204);
});

test('keys and buckets are compared as decoded UTF-8: %2F, spaces and non-ASCII are ordinary characters', async () => {
  await put('/v1/buckets/b%C3%BCcket/keys/a%2Fb%20c%E2%82%AC', 'x');
  expect((await get('/v1/buckets/b%C3%BCcket/keys/a%2Fb%20c%E2%82%AC')).body).toBe('x');
  expect((await get('/v1/buckets/bücket/keys/a%2Fb c€')).statusCode).toBe(200);
  expect((await get('/v1/buckets/bucket/keys/a%2Fb%20c%E2%82%AC')).statusCode).toBe(404);
});

test('the same key in two buckets holds two values', async () => {
  await put('/v1/buckets/b1/keys/k', 'in b1');
  await put('/v1/buckets/b2/keys/k', 'in b2');
  expect((await get('/v1/buckets/b1/keys/k')).body).toBe('in b1');
  expect((await get('/v1/buckets/b2/keys/k')).body).toBe('in b2');
});

test('beyond maxSiblings the oldest sibling is dropped and counted in the metrics', async () => {
  await t.close();
  t = await buildTestApp({ maxSiblings: 2 });
  for (const value of ['a', 'b', 'c']) {
    await put(URL_K, value);
    t.clock.nowMs += 1000;
  }
  const body = (await get(URL_K)).json<SiblingsJson>();
  expect(body.siblings.map((s) => Buffer.from(s.value, 'base64').toString())).toEqual(['b', 'c']);
  expect(await t.metrics.render()).toMatch(/^dynamokv_siblings_dropped_total 1$/m);
});
