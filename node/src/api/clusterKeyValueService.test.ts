/**
 * Quorum parameters through the key routes (inject) on in-memory clusters: values no ring of
 * this cluster could meet are 400 PARAMETER_INVALID naming the parameter and change nothing;
 * values N allows but the ring cannot meet today are 503 QUORUM_UNAVAILABLE before anything is
 * written; bucket properties and node defaults are lowered to the ring instead of failing
 * requests that never asked for them; consistent reads never answer stale.
 */
import { buildTestApp, buildTestCluster, type TestApp, type TestCluster } from '../../../test/support/testApp';
import { ERROR_CATALOGUE, type ErrorCode } from './errors';

const opened: { close(): Promise<void> }[] = [];
function track<T extends { close(): Promise<void> }>(built: T): T {
  opened.push(built);
  return built;
}
afterEach(async () => {
  for (let built = opened.pop(); built !== undefined; built = opened.pop()) await built.close();
});

const KEY = '/v1/buckets/b/keys/k';

async function call(node: TestApp, method: 'GET' | 'PUT' | 'DELETE', url: string, options: { payload?: string; context?: string } = {}) {
  return node.app.fastify.inject({ method, url, ...(options.payload === undefined ? {} : { payload: options.payload }), headers: options.context === undefined ? {} : { 'x-dynamo-context': options.context } });
}

async function snapshot(nodes: readonly TestApp[]): Promise<string[]> {
  const entries: string[] = [];
  for (const node of nodes) {
    for await (const [key, value] of node.engine.scan({ gte: Uint8Array.of(0), lt: Uint8Array.of(0xff) })) {
      entries.push(`${node.id} ${Buffer.from(key).toString('hex')}=${Buffer.from(value).toString('hex')}`);
    }
  }
  return entries;
}

async function expectRejected(nodes: readonly TestApp[], node: TestApp, method: 'GET' | 'PUT' | 'DELETE', url: string, code: ErrorCode, messagePattern?: RegExp) {
  const before = await snapshot(nodes);
  const response = await call(node, method, url, method === 'PUT' ? { payload: 'rejected' } : {});
  expect({ status: response.statusCode, code: response.json().error?.code }).toEqual({ status: ERROR_CATALOGUE[code].status, code });
  if (messagePattern !== undefined) expect(response.json().error.message).toMatch(messagePattern);
  expect(await snapshot(nodes)).toEqual(before);
  return response;
}

describe('N=3 on three nodes', () => {
  let c: TestCluster;
  beforeEach(async () => {
    c = track(await buildTestCluster({ nodes: 3 }));
    expect((await call(c.node('t1'), 'PUT', KEY, { payload: 'original' })).statusCode).toBe(204);
  });

  test('r, pr that are not counts or one/quorum/all, or exceed N -> 400 PARAMETER_INVALID naming them', async () => {
    const t2 = c.node('t2');
    for (const value of ['two', '-1', '1.5', '', 'ALL', '1000']) {
      await expectRejected(c.nodes, t2, 'GET', `${KEY}?r=${encodeURIComponent(value)}`, 'PARAMETER_INVALID', /"r"/);
    }
    await expectRejected(c.nodes, t2, 'GET', `${KEY}?r=4`, 'PARAMETER_INVALID', /^r=4 /);
    await expectRejected(c.nodes, t2, 'GET', `${KEY}?r=0`, 'PARAMETER_INVALID', /^r=0 /);
    await expectRejected(c.nodes, t2, 'GET', `${KEY}?pr=4`, 'PARAMETER_INVALID', /^pr=4 /);
    await expectRejected(c.nodes, t2, 'GET', `${KEY}?r=1&r=2`, 'PARAMETER_INVALID', /"r"/);
    await expectRejected(c.nodes, t2, 'GET', `${KEY}?consistent=yes`, 'PARAMETER_INVALID', /"consistent"/);
    await expectRejected(c.nodes, t2, 'GET', `${KEY}?w=2`, 'PARAMETER_INVALID', /"w"/);
  });

  test('w, dw, pw out of range, or dw above w -> 400 PARAMETER_INVALID naming them, on PUT and DELETE', async () => {
    const t3 = c.node('t3');
    for (const method of ['PUT', 'DELETE'] as const) {
      await expectRejected(c.nodes, t3, method, `${KEY}?w=4`, 'PARAMETER_INVALID', /^w=4 /);
      await expectRejected(c.nodes, t3, method, `${KEY}?w=0`, 'PARAMETER_INVALID', /^w=0 /);
      await expectRejected(c.nodes, t3, method, `${KEY}?w=two`, 'PARAMETER_INVALID', /"w"/);
      await expectRejected(c.nodes, t3, method, `${KEY}?dw=4`, 'PARAMETER_INVALID', /^dw=4 /);
      await expectRejected(c.nodes, t3, method, `${KEY}?w=1&dw=2`, 'PARAMETER_INVALID', /^dw=2 .*w=1/);
      await expectRejected(c.nodes, t3, method, `${KEY}?pw=9`, 'PARAMETER_INVALID', /^pw=9 /);
      await expectRejected(c.nodes, t3, method, `${KEY}?r=1`, 'PARAMETER_INVALID', /"r"/);
    }
    expect((await call(t3, 'GET', KEY)).body).toBe('original');
  });

  test('every valid form is accepted: integers, one, quorum, all', async () => {
    const t2 = c.node('t2');
    for (const query of ['r=1', 'r=one', 'r=quorum', 'r=all', 'r=3&pr=3', 'pr=one', 'consistent=true', 'consistent=false&r=2']) {
      const read = await call(t2, 'GET', `${KEY}?${query}`);
      expect([query, read.statusCode, read.body]).toEqual([query, 200, 'original']);
    }
    for (const query of ['w=1', 'w=all', 'w=quorum&dw=one', 'w=3&dw=3&pw=3', 'pw=all']) {
      const written = await call(t2, 'PUT', `${KEY}?${query}`, { payload: query });
      expect([query, written.statusCode]).toEqual([query, 204]);
    }
    expect((await call(t2, 'DELETE', `${KEY}?w=all&dw=1`)).statusCode).toBe(204);
  });

  test('w=3 with a replica cut off -> 503 QUORUM_UNAVAILABLE with Retry-After; w=2 still succeeds', async () => {
    c.isolate('t3');
    // Long enough for phi accrual to convict t3, so the coordinator knows w=3 is out of reach.
    await c.advance(15000);
    const refused = await call(c.node('t1'), 'PUT', `${KEY}?w=3`, { payload: 'needs three' });
    expect([refused.statusCode, refused.json().error.code, refused.headers['retry-after']]).toEqual([503, 'QUORUM_UNAVAILABLE', '1']);
    expect((await call(c.node('t1'), 'PUT', `${KEY}?w=2`, { payload: 'two suffice' })).statusCode).toBe(204);
    // A write whose quorum is known to be out of reach is refused before anything is stored, so
    // only the blind write that succeeded sits beside the original.
    const read = await call(c.node('t2'), 'GET', `${KEY}?consistent=true`);
    expect(read.statusCode).toBe(300);
    const values = (read.json().siblings as { value: string }[]).map((s) => Buffer.from(s.value, 'base64').toString());
    expect(values.sort()).toEqual(['original', 'two suffice']);
  });

  test('bucket w=3 applies to requests that give no w: a cut-off replica makes them 503', async () => {
    await c.node('t1').app.fastify.inject({ method: 'PUT', url: '/v1/buckets/b/props', payload: '{"w": 3}', headers: { 'content-type': 'application/json' } });
    c.isolate('t3');
    await c.advance(3000);
    expect((await call(c.node('t1'), 'PUT', KEY, { payload: 'x' })).statusCode).toBe(503);
    expect((await call(c.node('t1'), 'PUT', `${KEY}?w=2`, { payload: 'y' })).statusCode).toBe(204);
  });

  test('consistent=true: with 2 of 3 primaries cut off -> 503, never the stale value; with 1 cut off -> the newest', async () => {
    c.isolate('t2');
    await c.advance(3000);
    // t1 and t3 take the newer write; t2 keeps the original.
    expect((await call(c.node('t1'), 'PUT', `${KEY}?w=2`, { payload: 'newest', context: (await call(c.node('t1'), 'GET', KEY)).headers['x-dynamo-context'] as string })).statusCode).toBe(204);
    c.heal();
    c.isolate('t3');
    c.isolate('t1');
    await c.advance(3000);
    const refused = await call(c.node('t2'), 'GET', `${KEY}?consistent=true`);
    expect([refused.statusCode, refused.json().error.code]).toEqual([503, 'QUORUM_UNAVAILABLE']);
    c.heal('t1');
    await c.advance(3000);
    const read = await call(c.node('t2'), 'GET', `${KEY}?consistent=true`);
    expect([read.statusCode, read.body]).toEqual([200, 'newest']);
  });
});

describe('a cluster of one with N=3', () => {
  test('default quorums work; r or w up to N that the one member cannot meet -> 503; above N -> 400', async () => {
    const t = track(await buildTestApp());
    expect((await call(t, 'PUT', KEY, { payload: 'v' })).statusCode).toBe(204);
    expect((await call(t, 'GET', `${KEY}?r=all&pr=all`)).statusCode).toBe(200);
    const tooMany = await expectRejected([t], t, 'GET', `${KEY}?r=3`, 'QUORUM_UNAVAILABLE', /r=3 needs 3 replicas/);
    expect(tooMany.headers['retry-after']).toBe('1');
    // Refused before the coordinator stored anything (the snapshot in expectRejected proves it).
    await expectRejected([t], t, 'PUT', `${KEY}?w=2`, 'QUORUM_UNAVAILABLE', /w=2/);
    await expectRejected([t], t, 'DELETE', `${KEY}?dw=2&w=2`, 'QUORUM_UNAVAILABLE');
    await expectRejected([t], t, 'GET', `${KEY}?r=4`, 'PARAMETER_INVALID', /r=4/);
  });

  test('bucket properties and node defaults above the one member are lowered, not refused', async () => {
    const t = track(await buildTestApp({ quorums: { r: 3, w: 3, dw: 2 } }));
    expect((await call(t, 'PUT', KEY, { payload: 'defaults' })).statusCode).toBe(204);
    expect((await call(t, 'GET', KEY)).body).toBe('defaults');
    const props = await t.app.fastify.inject({ method: 'PUT', url: '/v1/buckets/b/props', payload: '{"r": 3, "w": 3, "dw": 3}', headers: { 'content-type': 'application/json' } });
    expect(props.statusCode).toBe(200);
    expect((await call(t, 'PUT', '/v1/buckets/b/keys/k2', { payload: 'props' })).statusCode).toBe(204);
    expect((await call(t, 'GET', '/v1/buckets/b/keys/k2')).body).toBe('props');
    // A defaulted dw is lowered to the request's w; an explicit one above w is refused.
    expect((await call(t, 'PUT', `${KEY}?w=1`, { payload: 'w1' })).statusCode).toBe(204);
    await expectRejected([t], t, 'PUT', `${KEY}?w=1&dw=2`, 'PARAMETER_INVALID', /dw=2/);
  });
});
