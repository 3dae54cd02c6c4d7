/**
 * Scoped client tokens: which scope each route needs, how tokens files parse, that the token set
 * answers the highest scope of a token and nothing for others, and the whole matrix of scopes
 * against the app's routes through inject(): allowed with a big enough scope, 403 FORBIDDEN naming
 * the needed scope with a smaller one, 401 with none or an unknown one.
 */
import { bearerToken, parseTokensFile, requiredScope, scopeCovers, TokenSet, type Scope } from './auth';
import { buildTestApp, type TestApp } from '../../../test/support/testApp';

test('the scope of a route: reads need read, key and bucket-property writes need write, admin routes and anything else admin', () => {
  expect(requiredScope('GET', '/v1/buckets/:bucket/keys/:key')).toBe('read');
  expect(requiredScope('GET', '/v1/ring')).toBe('read');
  expect(requiredScope('GET', '/v1/status')).toBe('read');
  expect(requiredScope('PUT', '/v1/buckets/:bucket/keys/:key')).toBe('write');
  expect(requiredScope('DELETE', '/v1/buckets/:bucket/keys/:key')).toBe('write');
  expect(requiredScope('PUT', '/v1/buckets/:bucket/props')).toBe('write');
  expect(requiredScope('POST', '/v1/admin/join')).toBe('admin');
  expect(requiredScope('GET', '/v1/admin/anything-later')).toBe('admin');
  expect(requiredScope('POST', '/v1/some-new-route')).toBe('admin');
  expect([scopeCovers('admin', 'write'), scopeCovers('write', 'read'), scopeCovers('read', 'write'), scopeCovers('write', 'admin')]).toEqual([true, true, false, false]);
});

test('Authorization header parsing: "Bearer <token>" only', () => {
  expect(bearerToken('Bearer abc')).toBe('abc');
  expect(bearerToken('bearer  abc ')).toBe('abc');
  for (const header of [undefined, '', 'Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', `Bearer ${'x'.repeat(5000)}`]) expect(bearerToken(header)).toBeUndefined();
});

test('a tokens file: scope and token per line, comments and blank lines skipped, problems by line number without the line', () => {
  const parsed = parseTokensFile('# team tokens\n\nread   reader-token-0123456\r\nadmin admin-token-012345678\nwrite w\nroot root-token-0123456789\nread two tokens-on-one-line\n');
  expect(parsed.tokens).toEqual([
    { scope: 'read', token: 'reader-token-0123456' },
    { scope: 'admin', token: 'admin-token-012345678' },
  ]);
  expect(parsed.problems).toEqual(['line 5: a token must be 16 to 4096 characters long', 'line 6: unknown scope (use read, write, admin)', 'line 7: expected "<scope> <token>"']);
  expect(parsed.problems.join(' ')).not.toContain('root-token');
});

test('the token set answers the highest scope a token was given, and nothing for near misses', () => {
  const set = new TokenSet([
    { scope: 'read', token: 'shared-token-0123456' },
    { scope: 'write', token: 'shared-token-0123456' },
    { scope: 'read', token: 'reader-token-0123456' },
  ]);
  expect(set.size).toBe(3);
  expect(set.scopeOf('shared-token-0123456')).toBe('write');
  expect(set.scopeOf('reader-token-0123456')).toBe('read');
  for (const other of ['reader-token-012345', 'reader-token-01234567', 'Reader-token-0123456', '', 'x']) expect(set.scopeOf(other)).toBeUndefined();
});

describe('the scope matrix over the routes (inject)', () => {
  const TOKENS: Record<Scope, string> = { read: 'read-scope-token-0001', write: 'write-scope-token-001', admin: 'admin-scope-token-001' };
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ tokens: (Object.entries(TOKENS) as [Scope, string][]).map(([scope, token]) => ({ scope, token })) });
  });
  afterAll(async () => {
    await t.close();
  });

  const ROUTES: readonly { method: 'GET' | 'PUT' | 'DELETE' | 'POST'; url: string; needs: Scope; body?: string }[] = [
    { method: 'GET', url: '/v1/buckets/b/keys/k', needs: 'read' },
    { method: 'GET', url: '/v1/status', needs: 'read' },
    { method: 'GET', url: '/v1/ring', needs: 'read' },
    { method: 'GET', url: '/v1/members', needs: 'read' },
    { method: 'GET', url: '/v1/handoff', needs: 'read' },
    { method: 'GET', url: '/v1/buckets/b/props', needs: 'read' },
    { method: 'PUT', url: '/v1/buckets/b/keys/k', needs: 'write', body: 'v' },
    { method: 'DELETE', url: '/v1/buckets/b/keys/k', needs: 'write' },
    { method: 'PUT', url: '/v1/buckets/b/props', needs: 'write', body: '{"w": 1}' },
    { method: 'POST', url: '/v1/admin/init', needs: 'admin' },
    { method: 'POST', url: '/v1/admin/join', needs: 'admin', body: '{"seed": "127.0.0.1:1"}' },
    { method: 'POST', url: '/v1/admin/leave', needs: 'admin', body: '{"node": "nobody"}' },
  ];

  test.each(ROUTES)('$method $url needs $needs', async ({ method, url, needs, body }) => {
    const call = (authorization?: string) =>
      t.app.fastify.inject({ method, url, ...(body === undefined ? {} : { payload: body }), headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) } });
    const none = await call();
    expect([none.statusCode, none.json().error.code]).toEqual([401, 'UNAUTHORIZED']);
    const unknown = await call('Bearer unknown-token-00000001');
    expect([unknown.statusCode, unknown.headers['www-authenticate']]).toEqual([401, 'Bearer error="invalid_token"']);
    for (const scope of ['read', 'write', 'admin'] as const) {
      const answer = await call(`Bearer ${TOKENS[scope]}`);
      if (scopeCovers(scope, needs)) {
        // Allowed: whatever the route then answers, it is not an authentication error.
        expect([scope, answer.statusCode === 401 || answer.statusCode === 403]).toEqual([scope, false]);
      } else {
        expect([scope, answer.statusCode, answer.json().error.code]).toEqual([scope, 403, 'FORBIDDEN']);
        expect(answer.json().error.message).toBe(`This route needs a token with the ${needs} scope; this token has the ${scope} scope.`);
        expect(answer.headers['www-authenticate']).toBe(`Bearer error="insufficient_scope", scope="${needs}"`);
      }
    }
  });

  test('probes, metrics and the OpenAPI document need no token', async () => {
    for (const url of ['/healthz', '/readyz', '/metrics', '/v1/openapi.json']) expect([url, (await t.app.fastify.inject({ method: 'GET', url })).statusCode]).toEqual([url, 200]);
  });
});
