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
import { buildTestApp, type TestApp } from '../../../test/support/testApp';
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
  afterEach(async () => {
    await t.close();
  });

  const key = (name: string) => `/v1/buckets/b/keys/${name}`;

  test('key routes: values, siblings, tombstones and client errors', async () => {
    t = await buildTestApp({ maxValueBytes: 64 });
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

  test('key routes: storage corruption (500) and overload (503)', async () => {
    t = await buildTestApp();
    const f = t.app.fastify;
    await f.inject({ method: 'PUT', url: key('k'), payload: 'v' });
    const rawKey = dataKey(partitionOf('b', 'k', 16), 'b', 'k');
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

  test('authentication errors (401, 403)', async () => {
    t = await buildTestApp({ authToken: 'a-long-enough-test-token' });
    const f = t.app.fastify;
    for (const [template, url] of [[KEY_TEMPLATE, key('k')], ['/v1/status', '/v1/status']] as const) {
      for (const method of template === KEY_TEMPLATE ? (['get', 'put', 'delete'] as const) : (['get'] as const)) {
        expectDocumented(template, method, await f.inject({ method: method.toUpperCase() as 'GET', url }));
        expectDocumented(template, method, await f.inject({ method: method.toUpperCase() as 'GET', url, headers: { authorization: 'Bearer nope' } }));
      }
    }
  });

  test('system routes', async () => {
    t = await buildTestApp();
    for (const url of ['/healthz', '/readyz', '/metrics', '/v1/status', '/v1/openapi.json']) {
      expectDocumented(url, 'get', await t.app.fastify.inject({ method: 'GET', url }));
    }
    expectDocumented('/healthz', 'delete', await t.app.fastify.inject({ method: 'DELETE', url: '/healthz' }));
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
