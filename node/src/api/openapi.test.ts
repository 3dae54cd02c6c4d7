/**
 * Keeps the OpenAPI document true. (1) The error codes it lists are exactly the catalogue's,
 * each under its catalogue status. (2) Real responses (inject) for every documented operation
 * and status are checked against it with ajv: status documented, required headers present and
 * well-formed, JSON bodies valid against their schemas, no body where none is documented.
 * (3) Every documented (path, method, status) is produced by at least one request here.
 */
import Ajv2020 from 'ajv/dist/2020';
import type { LightMyRequestResponse } from 'fastify';
import { partitionOf } from '../core/partition';
import { dataKey } from '../storage/keys';
import { buildTestApp, buildTestCluster, TEST_PARTITION_COUNT, type TestApp, type TestCluster } from '../../../test/support/testApp';
import { ERROR_CATALOGUE, ERROR_CODES } from './errors';
import { openApiDocument } from './openapi';

type Doc = Record<string, unknown>;
const doc = openApiDocument as unknown as Doc;

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('date-time', (text: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(text) && !Number.isNaN(Date.parse(text)));
ajv.addSchema(doc, 'openapi');

const KEY_TEMPLATE = '/v1/buckets/{bucket}/keys/{key}';

function at(pointer: string[]): unknown {
  let node: unknown = doc;
  for (const part of pointer) node = (node as Doc | undefined)?.[part];
  return node;
}

function deref(value: unknown): Doc {
  const ref = (value as Doc).$ref;
  if (typeof ref !== 'string') return value as Doc;
  return at(ref.replace(/^#\//, '').split('/')) as Doc;
}

function pointerOf(parts: string[]): string {
  return `openapi#/${parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;
}

function validate(parts: string[], value: unknown): void {
  const check = ajv.getSchema(pointerOf(parts));
  if (check === undefined) throw new Error(`no schema at ${parts.join(' ')}`);
  if (!check(value)) throw new Error(`${parts.join(' ')}: ${ajv.errorsText(check.errors)} in ${JSON.stringify(value)}`);
}

/** Collects every `code: {enum}` list in the document with the status it is documented under. */
function documentedCodes(): { status: string; codes: string[] }[] {
  const found: { status: string; codes: string[] }[] = [];
  const visit = (node: unknown, status: string) => {
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'code' && Array.isArray((value as Doc).enum)) found.push({ status, codes: (value as { enum: string[] }).enum });
      else visit(value, /^[1-5]\d\d$/.test(key) ? key : status);
    }
  };
  visit(doc.paths, '');
  const responses = (doc.components as Doc).responses as Doc;
  visit(responses.MethodNotAllowed, '405');
  visit(responses.RouteNotFound, '404');
  return found;
}

test('the document lists exactly the catalogue codes, each under its catalogue status', () => {
  const listed = documentedCodes();
  expect(new Set(listed.flatMap((l) => l.codes))).toEqual(new Set(ERROR_CODES));
  for (const { status, codes } of listed) {
    for (const code of codes) expect([code, ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].status]).toEqual([code, Number(status)]);
  }
});

test('every $ref in the document points at something (parameters are not reached by response checks)', () => {
  const unresolved: string[] = [];
  const visit = (node: unknown) => {
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') {
        if (at(value.replace(/^#\//, '').split('/')) === undefined) unresolved.push(value);
      } else visit(value);
    }
  };
  visit(doc);
  expect(unresolved).toEqual([]);
});

const exercised = new Set<string>();

/** Checks one real response against the document; `template` undefined means an unknown path. */
function expectDocumented(template: string | undefined, method: string, response: LightMyRequestResponse): void {
  const status = String(response.statusCode);
  let parts: string[];
  if (template !== undefined && at(['paths', template, method, 'responses', status]) !== undefined) {
    parts = ['paths', template, method, 'responses', status];
    exercised.add(`${template} ${method} ${status}`);
  } else if (status === '405' && template !== undefined) {
    parts = ['components', 'responses', 'MethodNotAllowed'];
  } else if (status === '404' && template === undefined) {
    parts = ['components', 'responses', 'RouteNotFound'];
  } else {
    throw new Error(`${method.toUpperCase()} ${template} ${status} is not documented`);
  }
  const documented = at(parts) as Doc;
  for (const [name, header] of Object.entries((documented.headers ?? {}) as Doc)) {
    const spec = deref(header);
    const value = response.headers[name.toLowerCase()];
    if (spec.required === true) expect([name, value]).toEqual([name, expect.any(String)]);
    if (value !== undefined) {
      const headerParts = typeof (header as Doc).$ref === 'string' ? ((header as Doc).$ref as string).slice(2).split('/') : [...parts, 'headers', name];
      validate([...headerParts, 'schema'], value);
    }
  }
  const content = documented.content as Doc | undefined;
  if (content === undefined) {
    expect(response.body).toBe('');
    return;
  }
  const type = String(response.headers['content-type'] ?? '');
  const mediaType = Object.keys(content).find((m) => m === '*/*' || type.startsWith(m));
  expect([type, mediaType]).toEqual([type, expect.any(String)]);
  if (mediaType === 'application/json') validate([...parts, 'content', mediaType, 'schema'], response.json());
}

describe('real responses match the document', () => {
  let t: TestApp;
  const opened: { close(): Promise<void> }[] = [];
  const track = <T extends { close(): Promise<void> }>(built: T): T => {
    opened.push(built);
    return built;
  };
  afterEach(async () => {
    for (let built = opened.pop(); built !== undefined; built = opened.pop()) await built.close();
  });

  const key = (name: string) => `/v1/buckets/b/keys/${name}`;

  test('key routes: values, siblings, tombstones and client errors', async () => {
    t = track(await buildTestApp({ maxValueBytes: 64 }));
    const f = t.app.fastify;
    const check = async (method: 'get' | 'put' | 'delete', url: string, extra: { payload?: string; headers?: Record<string, string> } = {}) => {
      const response = await f.inject({ method: method.toUpperCase() as 'GET', url, ...extra });
      expectDocumented(KEY_TEMPLATE, method, response);
      return response;
    };
    await check('get', key('absent'));
    const first = await check('put', key('k'), { payload: 'one', headers: { 'content-type': 'text/plain' } });
    await check('get', key('k'));
    await check('put', `${key('k')}?returnbody=true`, { payload: 'two' });
    await check('put', `${key('k2')}?returnbody=true`, { payload: 'solo' });
    await check('get', key('k'));
    await check('delete', key('k'), { headers: { 'x-dynamo-context': first.headers['x-dynamo-context'] as string } });
    await check('get', key('k'));
    for (const method of ['get', 'put', 'delete'] as const) {
      await check(method, '/v1/buckets//keys/k');
      await check(method, key('%FF'));
      await check(method, `${key('k')}?nope=1`);
    }
    await check('put', key('k'), { payload: 'x', headers: { 'x-dynamo-context': 'junk' } });
    await check('delete', key('k'), { headers: { 'x-dynamo-context': 'junk' } });
    await check('put', key('k'), { payload: 'x', headers: { 'content-type': 'nonsense' } });
    await check('put', key('k'), { payload: 'x'.repeat(65) });
    await check('delete', key('k'), { payload: 'x'.repeat(65), headers: { 'content-type': 'text/plain' } });
    expectDocumented(KEY_TEMPLATE, 'post', await f.inject({ method: 'POST', url: key('k') }));
    expectDocumented(undefined, 'get', await f.inject({ method: 'GET', url: '/nowhere' }));
  });

  test('key routes: storage corruption and failures (500) and overload (503)', async () => {
    // A read counts a corrupt replica as not answering (503), so a read's 500 comes from an
    // unexpected failure, injected here through the service.
    t = track(await buildTestApp({ service: (real) => ({ put: real.put.bind(real), delete: real.delete.bind(real), get: async () => Promise.reject(new Error('injected')) }) }));
    const f = t.app.fastify;
    await f.inject({ method: 'PUT', url: key('k'), payload: 'v' });
    const rawKey = dataKey(partitionOf('b', 'k', TEST_PARTITION_COUNT), 'b', 'k');
    await t.engine.put(rawKey, Uint8Array.of(1, 2, 3));
    for (const method of ['get', 'put', 'delete'] as const) {
      expectDocumented(KEY_TEMPLATE, method, await f.inject({ method: method.toUpperCase() as 'GET', url: key('k'), payload: method === 'put' ? 'x' : undefined }));
    }
    t.app.beginShutdown();
    for (const method of ['get', 'put', 'delete'] as const) {
      expectDocumented(KEY_TEMPLATE, method, await f.inject({ method: method.toUpperCase() as 'GET', url: key('k') }));
    }
    expectDocumented('/readyz', 'get', await f.inject({ method: 'GET', url: '/readyz' }));
  });

  test('authentication errors: 401 on every authenticated route, 403 where a read token is too small', async () => {
    const readToken = 'a-long-enough-read-token';
    t = track(await buildTestApp({ tokens: [{ scope: 'read', token: readToken }], authToken: 'a-long-enough-admin-token' }));
    const f = t.app.fastify;
    const routes = [
      [KEY_TEMPLATE, 'get', key('k')],
      [KEY_TEMPLATE, 'put', key('k')],
      [KEY_TEMPLATE, 'delete', key('k')],
      ['/v1/status', 'get', '/v1/status'],
      ['/v1/ring', 'get', '/v1/ring'],
      ['/v1/members', 'get', '/v1/members'],
      ['/v1/handoff', 'get', '/v1/handoff'],
      ['/v1/buckets/{bucket}/props', 'get', '/v1/buckets/b/props'],
      ['/v1/buckets/{bucket}/props', 'put', '/v1/buckets/b/props'],
      ['/v1/admin/join', 'post', '/v1/admin/join'],
      ['/v1/admin/init', 'post', '/v1/admin/init'],
      ['/v1/admin/leave', 'post', '/v1/admin/leave'],
      ['/v1/admin/abort', 'post', '/v1/admin/abort'],
    ] as const;
    for (const [template, method, url] of routes) {
      const inject = (headers: Record<string, string>) => f.inject({ method: method.toUpperCase() as 'GET', url, headers });
      const missing = await inject({});
      expect([url, method, missing.statusCode]).toEqual([url, method, 401]);
      expectDocumented(template, method, missing);
      expectDocumented(template, method, await inject({ authorization: 'Bearer not-a-token-of-this-node' }));
      const withRead = await inject({ authorization: `Bearer ${readToken}` });
      // The read scope is the smallest: routes that only read never answer 403.
      expect([url, method, withRead.statusCode === 403]).toEqual([url, method, method !== 'get']);
      if (withRead.statusCode === 403) expectDocumented(template, method, withRead);
    }
  });

  test('system routes', async () => {
    t = track(await buildTestApp());
    for (const url of ['/healthz', '/readyz', '/metrics', '/v1/status', '/v1/openapi.json']) {
      expectDocumented(url, 'get', await t.app.fastify.inject({ method: 'GET', url }));
    }
    expectDocumented('/healthz', 'delete', await t.app.fastify.inject({ method: 'DELETE', url: '/healthz' }));
  });

  /** Sends a request to one node and checks the answer against the document. */
  const send = async (node: TestApp, template: string, method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, body?: string) => {
    const response = await node.app.fastify.inject({ method, url, ...(body === undefined ? {} : { payload: body, headers: { 'content-type': 'application/json' } }) });
    expectDocumented(template, method.toLowerCase(), response);
    return response;
  };
  const JOIN = '/v1/admin/join';
  const LEAVE = '/v1/admin/leave';
  const PROPS = '/v1/buckets/{bucket}/props';

  test('cluster routes: join, ring, members, leave and bucket properties', async () => {
    const c: TestCluster = track(await buildTestCluster({ nodes: 3, joined: false }));
    const [n1, n2, n3] = c.nodes as [TestApp, TestApp, TestApp];
    expect((await send(n2, JOIN, 'POST', JOIN, '{"seed": "no port"}')).statusCode).toBe(400);
    expect((await send(n2, JOIN, 'POST', JOIN, '{"seed":')).statusCode).toBe(400);
    expect((await send(n2, JOIN, 'POST', JOIN, JSON.stringify({ seed: n1.peerAddress }))).statusCode).toBe(200);
    // An empty body joins through the node's first configured seed (t1 here).
    expect((await send(n3, JOIN, 'POST', JOIN)).statusCode).toBe(200);
    await c.advance(3000);
    expect((await send(n3, JOIN, 'POST', JOIN, JSON.stringify({ seed: n1.peerAddress }))).statusCode).toBe(409);
    // init on a node that already joined changes nothing and answers its ring.
    expect((await send(n3, '/v1/admin/init', 'POST', '/v1/admin/init')).json().members).toHaveLength(3);
    const lonely = track(await buildTestApp());
    // Nothing listens at port 9999 on the in-memory network: the seed is unreachable.
    expect((await send(lonely, JOIN, 'POST', JOIN, '{"seed": "127.0.0.1:9999"}')).statusCode).toBe(503);

    for (const node of c.nodes) {
      expect((await send(node, '/v1/ring', 'GET', '/v1/ring')).json().members).toHaveLength(3);
      expect((await send(node, '/v1/members', 'GET', '/v1/members')).json().self).toBe(node.id);
      expect((await send(node, '/v1/handoff', 'GET', '/v1/handoff')).json().transfers).toEqual([]);
      expect((await send(node, '/v1/status', 'GET', '/v1/status')).json().cluster.members).toBe(3);
    }

    expect((await send(n2, PROPS, 'PUT', '/v1/buckets/b/props', '{"w": 2, "conflictMode": "lww"}')).statusCode).toBe(200);
    expect((await send(n3, PROPS, 'GET', '/v1/buckets/b/props')).statusCode).toBe(200);
    expect((await send(n3, PROPS, 'PUT', '/v1/buckets/b/props', '{"x": 1}')).statusCode).toBe(400);
    expect((await send(n3, PROPS, 'GET', `/v1/buckets/${'b'.repeat(101)}/props`)).statusCode).toBe(400);

    expect((await send(n2, LEAVE, 'POST', LEAVE, '{"node": 7}')).statusCode).toBe(400);
    expect((await send(n2, LEAVE, 'POST', LEAVE, '[]')).statusCode).toBe(400);
    // Ring changes go through the claimant, t1; cut off, it cannot apply them.
    c.isolate('t1');
    expect((await send(n2, LEAVE, 'POST', LEAVE, '{"node": "t3"}')).statusCode).toBe(503);
    expect((await send(n2, PROPS, 'PUT', '/v1/buckets/b/props', '{"w": 1}')).statusCode).toBe(503);
    c.heal();
    expect((await send(n2, LEAVE, 'POST', LEAVE, '{"node": "t3"}')).statusCode).toBe(200);
    expect((await send(lonely, LEAVE, 'POST', LEAVE)).statusCode).toBe(409);
  });

  test('cluster routes with a pending change: the ring shows it, a second change is refused with Retry-After, abort drops it', async () => {
    // With handoff on and no handoff loop in the test nodes, a join stays pending until aborted.
    const c: TestCluster = track(await buildTestCluster({ nodes: 3, joined: false, handoff: true }));
    const [n1, n2, n3] = c.nodes as [TestApp, TestApp, TestApp];
    const ABORT = '/v1/admin/abort';
    expect((await send(n1, ABORT, 'POST', ABORT)).json().aborted).toBeNull();
    expect((await send(n2, JOIN, 'POST', JOIN, JSON.stringify({ seed: n1.peerAddress }))).json().pending.joining).toEqual(['t2']);
    await c.advance(3000);
    const ring = (await send(n1, '/v1/ring', 'GET', '/v1/ring')).json();
    expect([ring.pending.transfersTotal > 0, ring.pending.partitions.length > 0, ring.pending.transfers.length]).toEqual([true, true, ring.pending.transfersTotal]);
    const refused = await send(n3, JOIN, 'POST', JOIN, JSON.stringify({ seed: n1.peerAddress }));
    expect([refused.statusCode, refused.headers['retry-after']]).toEqual([409, '2']);
    expect((await send(n3, JOIN, 'POST', `${JOIN}?waitMs=soon`, JSON.stringify({ seed: n1.peerAddress }))).statusCode).toBe(400);
    expect((await send(n1, LEAVE, 'POST', `${LEAVE}?waitMs=400000`, '{"node": "t1"}')).statusCode).toBe(400);
    c.isolate('t1');
    expect((await send(n2, ABORT, 'POST', ABORT)).statusCode).toBe(503);
    c.heal();
    const aborted = (await send(n2, ABORT, 'POST', ABORT)).json();
    expect([aborted.aborted.joining, aborted.ring.pending]).toEqual([['t2'], null]);
    // The join was dropped: the joiner is "left" and the next join goes ahead.
    expect(aborted.ring.members.find((m: { id: string }) => m.id === 't2').state).toBe('left');
    expect((await send(n3, JOIN, 'POST', JOIN, JSON.stringify({ seed: n1.peerAddress }))).statusCode).toBe(200);
  });

  test('key routes: QUORUM_UNAVAILABLE from a cluster that lost two of three replicas', async () => {
    const c: TestCluster = track(await buildTestCluster({ nodes: 3 }));
    const n1 = c.node('t1');
    expect((await send(n1, KEY_TEMPLATE, 'PUT', key('k'))).statusCode).toBe(204);
    c.isolate('t2');
    c.isolate('t3');
    await c.advance(3000);
    const consistent = await send(n1, KEY_TEMPLATE, 'GET', `${key('k')}?consistent=true`);
    expect([consistent.statusCode, consistent.json().error.code, consistent.headers['retry-after']]).toEqual([503, 'QUORUM_UNAVAILABLE', '1']);
    expect((await send(n1, KEY_TEMPLATE, 'PUT', `${key('k')}?w=3`)).json().error.code).toBe('QUORUM_UNAVAILABLE');
    expect((await send(n1, KEY_TEMPLATE, 'DELETE', `${key('k')}?w=all`)).json().error.code).toBe('QUORUM_UNAVAILABLE');
  });

  afterAll(() => {
    // Runs after the scenarios above: every documented response must have been produced.
    const documented: string[] = [];
    for (const [path, item] of Object.entries(doc.paths as Doc)) {
      for (const [method, operation] of Object.entries(item as Doc)) {
        if (method === 'parameters') continue;
        for (const status of Object.keys((operation as Doc).responses as Doc)) documented.push(`${path} ${method} ${status}`);
      }
    }
    expect(documented.filter((d) => !exercised.has(d))).toEqual([]);
  });
});
