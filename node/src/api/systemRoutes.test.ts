/**
 * Probes, status, the OpenAPI route and the Prometheus metrics, over inject(): each metric the
 * issue names appears with the values the preceding requests must have produced.
 */
import { buildTestApp, type TestApp } from '../../../test/support/testApp';
import { openApiDocument } from './openapi';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

test('/healthz answers 200 while the process serves HTTP, also while stopping', async () => {
  expect((await t.app.fastify.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
  t.app.beginShutdown();
  expect((await t.app.fastify.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
});

test('/readyz follows readiness: 503 before the node is ready, 200 after', async () => {
  t.app.setReady(false);
  const starting = await t.app.fastify.inject({ method: 'GET', url: '/readyz' });
  expect([starting.statusCode, starting.json()]).toEqual([503, { status: 'not-ready', reason: 'starting' }]);
  t.app.setReady(true);
  expect((await t.app.fastify.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
});

test('/v1/status reports the node, its storage, its cluster view and the requests in flight', async () => {
  const status = await t.app.fastify.inject({ method: 'GET', url: '/v1/status' });
  expect(status.json()).toEqual({
    nodeId: 't1',
    version: '0.0.0-test',
    uptimeSeconds: 0,
    storage: { engine: 'memory', approximateBytes: 0 },
    cluster: { clusterId: t.membership.ring().clusterId, ringVersion: 1, members: 1, membersUp: 1, hintBacklog: 0, actorId: 't1.1' },
    inFlightRequests: 0,
  });
});

test('/v1/openapi.json serves the document', async () => {
  const response = await t.app.fastify.inject({ method: 'GET', url: '/v1/openapi.json' });
  expect(response.json()).toEqual(JSON.parse(JSON.stringify(openApiDocument)));
});

test('/metrics counts requests by operation and status, latency, siblings read and storage bytes', async () => {
  const f = t.app.fastify;
  await f.inject({ method: 'PUT', url: '/v1/buckets/b/keys/k', payload: 'one' });
  await f.inject({ method: 'PUT', url: '/v1/buckets/b/keys/k', payload: 'two' });
  await f.inject({ method: 'GET', url: '/v1/buckets/b/keys/k' });
  await f.inject({ method: 'GET', url: '/v1/buckets/b/keys/missing' });
  await f.inject({ method: 'DELETE', url: '/v1/buckets/b/keys/x' });
  await f.inject({ method: 'PUT', url: '/v1/buckets/b/keys/k?bad=1' });

  const response = await f.inject({ method: 'GET', url: '/metrics' });
  expect(response.headers['content-type']).toMatch(/^text\/plain/);
  const text = response.body;
  const line = (pattern: string) => expect(text).toMatch(new RegExp(`^${pattern}$`, 'm'));
  line('dynamokv_requests_total\\{operation="put",status="204"\\} 2');
  line('dynamokv_requests_total\\{operation="get",status="300"\\} 1');
  line('dynamokv_requests_total\\{operation="get",status="404"\\} 1');
  line('dynamokv_requests_total\\{operation="delete",status="204"\\} 1');
  line('dynamokv_requests_total\\{operation="put",status="400"\\} 1');
  line('dynamokv_request_duration_seconds_count\\{operation="put"\\} 3');
  line('dynamokv_request_duration_seconds_count\\{operation="get"\\} 2');
  // One read found two siblings: the sample lands in the le="2" bucket, not le="1".
  line('dynamokv_siblings_bucket\\{le="1"\\} 0');
  line('dynamokv_siblings_bucket\\{le="2"\\} 1');
  line('dynamokv_siblings_count 1');
  line('dynamokv_siblings_dropped_total 0');
  line('dynamokv_storage_bytes \\d+');
});

test('metrics of two apps in one process stay separate (per-node registries)', async () => {
  const other = await buildTestApp();
  try {
    await other.app.fastify.inject({ method: 'PUT', url: '/v1/buckets/b/keys/k', payload: 'x' });
    expect(await t.metrics.render()).not.toMatch(/operation="put"/);
    expect(await other.metrics.render()).toMatch(/dynamokv_requests_total\{operation="put",status="204"\} 1/);
  } finally {
    await other.close();
  }
});

test('extra route modules are mounted with the same error handling and 405s, JSON via jsonBody', async () => {
  const { jsonBody } = await import('./reply');
  const extra = await buildTestApp({
    extraRoutes: [
      (fastify) => {
        fastify.post('/v1/echo', async (request) => ({ got: jsonBody(request.body) }));
        return [{ url: '/v1/echo', methods: ['POST'] }];
      },
    ],
  });
  try {
    const f = extra.app.fastify;
    expect((await f.inject({ method: 'POST', url: '/v1/echo', payload: '{"a":1}', headers: { 'content-type': 'application/json' } })).json()).toEqual({ got: { a: 1 } });
    const bad = await f.inject({ method: 'POST', url: '/v1/echo', payload: '{"a":', headers: { 'content-type': 'application/json' } });
    expect([bad.statusCode, bad.json().error.code]).toEqual([400, 'REQUEST_INVALID']);
    const wrong = await f.inject({ method: 'GET', url: '/v1/echo' });
    expect([wrong.statusCode, wrong.headers.allow]).toEqual([405, 'POST']);
  } finally {
    await extra.close();
  }
});
