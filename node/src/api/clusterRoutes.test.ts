/**
 * The cluster routes over inject() on in-memory clusters (production membership, coordinator and
 * routes; in-memory network and virtual clock): the ring and members as each node sees them,
 * join and leave with their refusals, and bucket properties, including that a rejected request
 * leaves every node's stored bytes (data, hints and ring) exactly as they were.
 */
import pino from 'pino';
import { buildTestApp, buildTestCluster, TEST_PARTITION_COUNT, type TestApp, type TestCluster } from '../../../test/support/testApp';
import { NodeMetrics } from '../metrics';
import { buildApp } from './app';
import { RING_VERSION_HEADER, registerClusterRoutes } from './clusterRoutes';
import { DynamoError, ERROR_CATALOGUE, type ErrorCode } from './errors';

const opened: { close(): Promise<void> }[] = [];
function track<T extends { close(): Promise<void> }>(built: T): T {
  opened.push(built);
  return built;
}
afterEach(async () => {
  for (let built = opened.pop(); built !== undefined; built = opened.pop()) await built.close();
});

async function send(node: TestApp, method: 'GET' | 'PUT' | 'POST', url: string, body?: unknown) {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return node.app.fastify.inject({ method, url, ...(payload === undefined ? {} : { payload, headers: { 'content-type': 'application/json' } }) });
}

/** Every record of every node, as hex, in key order. */
async function snapshot(nodes: readonly TestApp[]): Promise<string[]> {
  const entries: string[] = [];
  for (const node of nodes) {
    for await (const [key, value] of node.engine.scan({ gte: Uint8Array.of(0), lt: Uint8Array.of(0xff) })) {
      entries.push(`${node.id} ${Buffer.from(key).toString('hex')}=${Buffer.from(value).toString('hex')}`);
    }
  }
  return entries;
}

/** Sends a request that must be refused with `code`; no node's stored bytes may change. */
async function expectRejected(nodes: readonly TestApp[], node: TestApp, method: 'GET' | 'PUT' | 'POST', url: string, body: unknown, code: ErrorCode) {
  const before = await snapshot(nodes);
  const response = await send(node, method, url, body);
  expect({ status: response.statusCode, body: response.json() }).toEqual({ status: ERROR_CATALOGUE[code].status, body: { error: { code, message: expect.any(String) } } });
  expect(await snapshot(nodes)).toEqual(before);
  return response;
}

describe('a joined cluster of three', () => {
  let c: TestCluster;
  beforeEach(async () => {
    c = track(await buildTestCluster({ nodes: 3 }));
  });

  test('GET /v1/ring: every node shows the same ring, 3 normal members, N distinct owners per partition', async () => {
    const rings = await Promise.all(c.nodes.map(async (node) => (await send(node, 'GET', '/v1/ring')).json()));
    for (const ring of rings) {
      expect(ring).toMatchObject({ clusterId: rings[0].clusterId, version: rings[0].version, partitionCount: TEST_PARTITION_COUNT, replicationFactor: 3, claimant: 't1', activeMembers: 3 });
      expect(ring.members.map((m: { id: string; state: string }) => [m.id, m.state])).toEqual([
        ['t1', 'normal'],
        ['t2', 'normal'],
        ['t3', 'normal'],
      ]);
      expect(ring.partitions).toHaveLength(TEST_PARTITION_COUNT);
      for (const [index, { partition, owners }] of (ring.partitions as { partition: number; owners: string[] }[]).entries()) {
        expect(partition).toBe(index);
        expect(new Set(owners).size).toBe(3);
      }
    }
  });

  test('GET /v1/members: self, liveness and ownership shares as this node sees them', async () => {
    const members = (await send(c.node('t2'), 'GET', '/v1/members')).json();
    expect(members).toMatchObject({ self: 't2', ringVersion: c.node('t2').membership.ring().version, hintBacklog: 0 });
    expect(members.members.map((m: { id: string; self: boolean; up: boolean }) => [m.id, m.self, m.up])).toEqual([
      ['t1', false, true],
      ['t2', true, true],
      ['t3', false, true],
    ]);
    const shares = (members.members as { ownership: number }[]).reduce((sum, m) => sum + m.ownership, 0);
    expect(shares).toBeCloseTo(1, 9);
  });

  test('a member cut off for a few gossip rounds shows as down to the others', async () => {
    c.isolate('t3');
    await c.advance(3000);
    const members = (await send(c.node('t1'), 'GET', '/v1/members')).json().members as { id: string; up: boolean }[];
    expect(members.map((m) => [m.id, m.up])).toEqual([
      ['t1', true],
      ['t2', true],
      ['t3', false],
    ]);
  });

  test('join: a member of a cluster of more than one -> 409 MEMBERSHIP_CONFLICT; bad seeds -> 400; nothing changes', async () => {
    const t2 = c.node('t2');
    await expectRejected(c.nodes, t2, 'POST', '/v1/admin/join', { seed: c.node('t1').peerAddress }, 'MEMBERSHIP_CONFLICT');
    for (const seed of ['', 'no-port', '127.0.0.1:9001/path', 'http://127.0.0.1:9001?x=1', 'ftp://127.0.0.1:9001', 'http://user@127.0.0.1:9001', 'a b:1', 9001, null, ['127.0.0.1:9001']]) {
      await expectRejected(c.nodes, t2, 'POST', '/v1/admin/join', { seed }, 'PARAMETER_INVALID');
    }
    await expectRejected(c.nodes, t2, 'POST', '/v1/admin/join', '{"seed":', 'REQUEST_INVALID');
    await expectRejected(c.nodes, t2, 'POST', '/v1/admin/join', '"127.0.0.1:9001"', 'REQUEST_INVALID');
  });

  test('leave: an unknown or malformed node -> 400; through a cut-off claimant -> 503; then a real leave', async () => {
    const t2 = c.node('t2');
    const invalid = await expectRejected(c.nodes, t2, 'POST', '/v1/admin/leave', { node: 'nobody' }, 'PARAMETER_INVALID');
    expect(invalid.json().error.message).toMatch(/nobody/);
    await expectRejected(c.nodes, t2, 'POST', '/v1/admin/leave', { node: '' }, 'PARAMETER_INVALID');
    await expectRejected(c.nodes, t2, 'POST', '/v1/admin/leave', { node: 3 }, 'PARAMETER_INVALID');
    await expectRejected(c.nodes, t2, 'POST', '/v1/admin/leave', { node: null }, 'PARAMETER_INVALID');
    await expectRejected(c.nodes, t2, 'POST', '/v1/admin/leave', 'nope', 'REQUEST_INVALID');
    c.isolate('t1');
    const unreachable = await expectRejected(c.nodes, t2, 'POST', '/v1/admin/leave', { node: 't3' }, 'QUORUM_UNAVAILABLE');
    expect(unreachable.headers['retry-after']).toBe('1');
    c.heal();

    const left = await send(t2, 'POST', '/v1/admin/leave', { node: 't3' });
    expect(left.statusCode).toBe(200);
    expect(left.json().members.map((m: { id: string; state: string }) => [m.id, m.state])).toEqual([
      ['t1', 'normal'],
      ['t2', 'normal'],
      ['t3', 'left'],
    ]);
    expect(left.json().activeMembers).toBe(2);
    // An empty body makes the node itself leave.
    const self = await send(t2, 'POST', '/v1/admin/leave');
    expect(self.json().members.find((m: { id: string }) => m.id === 't2').state).toBe('left');
  });

  test('bucket props: a PUT on one node is what every node GETs, and a later PUT replaces it', async () => {
    const put = await send(c.node('t2'), 'PUT', '/v1/buckets/b/props', { r: 1, w: 3, dw: 1, conflictMode: 'lww' });
    expect([put.statusCode, put.json()]).toEqual([200, { bucket: 'b', props: { r: 1, w: 3, dw: 1, conflictMode: 'lww' } }]);
    await c.advance(3000);
    for (const node of c.nodes) {
      expect((await send(node, 'GET', '/v1/buckets/b/props')).json()).toEqual({ bucket: 'b', props: { r: 1, w: 3, dw: 1, conflictMode: 'lww' } });
    }
    await send(c.node('t3'), 'PUT', '/v1/buckets/b/props', { w: 2 });
    expect((await send(c.node('t3'), 'GET', '/v1/buckets/b/props')).json()).toEqual({ bucket: 'b', props: { w: 2, conflictMode: 'siblings' } });
    expect((await send(c.node('t1'), 'GET', '/v1/buckets/other/props')).json()).toEqual({ bucket: 'other', props: { conflictMode: 'siblings' } });
  });

  test('bucket props: unknown properties, bad conflict modes and values impossible with N=3 -> 400, nothing changes', async () => {
    const t1 = c.node('t1');
    await send(t1, 'PUT', '/v1/buckets/b/keys/k', 'original');
    await send(t1, 'PUT', '/v1/buckets/b/props', { w: 2 });
    const bad: [unknown, ErrorCode][] = [
      [{ x: 1 }, 'PARAMETER_INVALID'],
      [{ conflictMode: 'merge' }, 'PARAMETER_INVALID'],
      [{ conflictMode: 'LWW' }, 'PARAMETER_INVALID'],
      [{ w: 4 }, 'PARAMETER_INVALID'],
      [{ r: 0 }, 'PARAMETER_INVALID'],
      [{ dw: -1 }, 'PARAMETER_INVALID'],
      [{ w: 1, dw: 2 }, 'PARAMETER_INVALID'],
      [{ w: 'two' }, 'PARAMETER_INVALID'],
      [{ w: '2' }, 'PARAMETER_INVALID'],
      [{ r: 1.5 }, 'PARAMETER_INVALID'],
      [[], 'REQUEST_INVALID'],
      ['{"w":', 'REQUEST_INVALID'],
    ];
    for (const [body, code] of bad) await expectRejected(c.nodes, t1, 'PUT', '/v1/buckets/b/props', body, code);
    await expectRejected(c.nodes, t1, 'PUT', '/v1/buckets/b/props', undefined, 'REQUEST_INVALID');
    await expectRejected(c.nodes, t1, 'PUT', `/v1/buckets/${'b'.repeat(101)}/props`, { w: 1 }, 'BUCKET_INVALID');
    await expectRejected(c.nodes, t1, 'GET', `/v1/buckets/${'b'.repeat(101)}/props`, undefined, 'BUCKET_INVALID');
    c.isolate('t1');
    await expectRejected(c.nodes, c.node('t2'), 'PUT', '/v1/buckets/b/props', { w: 1 }, 'QUORUM_UNAVAILABLE');
    c.heal();
    expect((await send(t1, 'GET', '/v1/buckets/b/props')).json().props).toEqual({ w: 2, conflictMode: 'siblings' });
    expect((await send(t1, 'GET', '/v1/buckets/b/keys/k')).body).toBe('original');
  });

  test('an lww bucket: two blind puts through different coordinators leave one value, the newer', async () => {
    await send(c.node('t1'), 'PUT', '/v1/buckets/last/props', { conflictMode: 'lww' });
    await c.advance(2000);
    await send(c.node('t1'), 'PUT', '/v1/buckets/last/keys/k', 'older');
    c.clock.nowMs += 1000;
    await send(c.node('t2'), 'PUT', '/v1/buckets/last/keys/k', 'newer');
    for (const node of c.nodes) {
      const read = await send(node, 'GET', '/v1/buckets/last/keys/k');
      expect([read.statusCode, read.body]).toEqual([200, 'newer']);
    }
    // The same two writes in a siblings bucket stay side by side.
    await send(c.node('t1'), 'PUT', '/v1/buckets/both/keys/k', 'older');
    await send(c.node('t2'), 'PUT', '/v1/buckets/both/keys/k', 'newer');
    expect((await send(c.node('t3'), 'GET', '/v1/buckets/both/keys/k')).statusCode).toBe(300);
  });
});

describe('separate nodes joined through the API', () => {
  test('join by "host:port" and by an empty body (the configured seed); the ring spreads by gossip', async () => {
    const c = track(await buildTestCluster({ nodes: 3, joined: false }));
    const [t1, t2, t3] = c.nodes as [TestApp, TestApp, TestApp];
    const joined = await send(t2, 'POST', '/v1/admin/join', { seed: t1.peerAddress });
    expect(joined.statusCode).toBe(200);
    expect(joined.json().members.map((m: { id: string }) => m.id)).toEqual(['t1', 't2']);
    expect((await send(t3, 'POST', '/v1/admin/join')).statusCode).toBe(200);
    await c.advance(3000);
    const versions = await Promise.all(c.nodes.map(async (node) => (await send(node, 'GET', '/v1/ring')).json().version));
    expect(new Set(versions).size).toBe(1);
    expect((await send(t2, 'GET', '/v1/ring')).json().activeMembers).toBe(3);
  });

  test('every answer names the ring version the node holds (X-Dynamo-Ring-Version), key answers and errors included; a join raises it', async () => {
    const c = track(await buildTestCluster({ nodes: 2, joined: false }));
    const [t1, t2] = c.nodes as [TestApp, TestApp];
    const versionOf = async (node: TestApp) => String((await send(node, 'GET', '/v1/ring')).json().version);
    const put = await t1.app.fastify.inject({ method: 'PUT', url: '/v1/buckets/b/keys/k', payload: 'v', headers: { 'content-type': 'text/plain' } });
    const before = await versionOf(t1);
    expect([put.statusCode, put.headers[RING_VERSION_HEADER]]).toEqual([204, before]);
    const missing = await send(t1, 'GET', '/v1/buckets/b/keys/absent');
    expect([missing.statusCode, missing.headers[RING_VERSION_HEADER]]).toEqual([404, before]);
    expect((await send(t2, 'POST', '/v1/admin/join', { seed: t1.peerAddress })).statusCode).toBe(200);
    await c.advance(3000);
    const after = await versionOf(t1);
    expect(Number(after)).toBeGreaterThan(Number(before));
    const read = await send(t1, 'GET', '/v1/buckets/b/keys/k');
    expect([read.statusCode, read.headers[RING_VERSION_HEADER]]).toEqual([200, after]);
    expect((await send(t2, 'GET', '/v1/buckets/b/keys/k')).headers[RING_VERSION_HEADER]).toBe(await versionOf(t2));
  });

  test('a full http URL is accepted as a seed', async () => {
    const c = track(await buildTestCluster({ nodes: 2, joined: false }));
    expect((await send(c.node('t2'), 'POST', '/v1/admin/join', { seed: `http://${c.node('t1').peerAddress}` })).statusCode).toBe(200);
  });
});

describe('one membership change at a time (handoff on, no stream runs, so a change stays pending until aborted)', () => {
  test('a second join is refused at once with Retry-After; with ?waitMs= it waits and goes through once the first change is gone', async () => {
    const c = track(await buildTestCluster({ nodes: 3, joined: false, handoff: true }));
    const [t1, t2, t3] = c.nodes as [TestApp, TestApp, TestApp];
    expect((await send(t2, 'POST', '/v1/admin/join', { seed: t1.peerAddress })).json().pending.joining).toEqual(['t2']);
    const refused = await expectRejected(c.nodes, t3, 'POST', '/v1/admin/join', { seed: t1.peerAddress }, 'MEMBERSHIP_CONFLICT');
    expect([refused.headers['retry-after'], refused.json().error.message]).toEqual(['2', expect.stringMatching(/^a membership change is in progress \(\d+ of \d+ transfers waiting\)/)]);
    // Waiting: the join polls on the virtual clock while the first change is aborted.
    const waiting = send(t3, 'POST', '/v1/admin/join?waitMs=10000', { seed: t1.peerAddress });
    await c.advance(1000);
    expect((await send(t1, 'POST', '/v1/admin/abort')).json().aborted).toMatchObject({ joining: ['t2'] });
    await c.advance(1000);
    const joined = await waiting;
    expect(joined.statusCode).toBe(200);
    expect(joined.json().pending.joining).toEqual(['t3']);
    // A wait that runs out is the same refusal, with Retry-After.
    const late = send(t2, 'POST', '/v1/admin/leave?waitMs=1500', { node: 't1' });
    await c.advance(3000);
    expect([(await late).statusCode, (await late).headers['retry-after']]).toEqual([409, '2']);
  });
});

describe('a single node (a cluster of one)', () => {
  test('join to an unreachable seed -> 503 QUORUM_UNAVAILABLE with Retry-After, naming the seed; the ring stays', async () => {
    const t = track(await buildTestApp());
    const response = await expectRejected([t], t, 'POST', '/v1/admin/join', { seed: '127.0.0.1:9999' }, 'QUORUM_UNAVAILABLE');
    expect(response.headers['retry-after']).toBe('1');
    expect(response.json().error.message).toMatch(/127\.0\.0\.1:9999/);
  });

  test('join to itself -> 409 MEMBERSHIP_CONFLICT (already a member)', async () => {
    const t = track(await buildTestApp());
    await expectRejected([t], t, 'POST', '/v1/admin/join', { seed: t.peerAddress }, 'MEMBERSHIP_CONFLICT');
  });

  test('join without a seed and no configured seed -> 400 PARAMETER_INVALID', async () => {
    const t = track(await buildTestApp());
    const response = await expectRejected([t], t, 'POST', '/v1/admin/join', undefined, 'PARAMETER_INVALID');
    expect(response.json().error.message).toMatch(/seed/);
  });

  test('the last member cannot leave -> 409 MEMBERSHIP_CONFLICT', async () => {
    const t = track(await buildTestApp());
    await expectRejected([t], t, 'POST', '/v1/admin/leave', undefined, 'MEMBERSHIP_CONFLICT');
    await expectRejected([t], t, 'POST', '/v1/admin/leave', { node: 't1' }, 'MEMBERSHIP_CONFLICT');
  });

  test('cluster routes answer 405 with Allow for other methods', async () => {
    const t = track(await buildTestApp());
    const wrong = await t.app.fastify.inject({ method: 'DELETE', url: '/v1/buckets/b/props' });
    expect([wrong.statusCode, wrong.headers.allow, wrong.json().error.code]).toEqual([405, 'GET, PUT', 'METHOD_NOT_ALLOWED']);
    const join = await t.app.fastify.inject({ method: 'GET', url: '/v1/admin/join' });
    expect([join.statusCode, join.headers.allow]).toEqual([405, 'POST']);
  });
});

test('guards given to the cluster routes run before each of them (how the app applies auth and overload)', async () => {
  const t = track(await buildTestApp());
  let guarded = 0;
  const app = buildApp({
    service: { get: async () => undefined, put: async () => Promise.reject(new Error('unused')), delete: async () => Promise.reject(new Error('unused')) },
    contexts: t.contexts,
    metrics: new NodeMetrics({ storageBytes: async () => 0, collectProcessMetrics: false }),
    logger: pino({ level: 'silent' }),
    limits: { maxBucketBytes: 100, maxKeyBytes: 100, maxValueBytes: 1024, maxInFlightRequests: 8 },
    status: async () => ({ nodeId: 'x', version: '0', uptimeSeconds: 0, storage: { engine: 'memory', approximateBytes: 0 } }),
    extraRoutes: [
      (fastify) =>
        registerClusterRoutes(fastify, {
          membership: t.membership,
          hintBacklog: () => 0,
          validateBucket: () => undefined,
          guards: [
            (_request, _reply, done) => {
              guarded++;
              done(new DynamoError('FORBIDDEN'));
            },
          ],
        }),
    ],
  });
  const before = await snapshot([t]);
  for (const [method, url] of [['GET', '/v1/ring'], ['GET', '/v1/members'], ['POST', '/v1/admin/join'], ['POST', '/v1/admin/leave'], ['POST', '/v1/admin/abort'], ['GET', '/v1/buckets/b/props'], ['PUT', '/v1/buckets/b/props']] as const) {
    const response = await app.fastify.inject({ method, url, payload: method === 'GET' ? undefined : '{"w": 1}', headers: { 'content-type': 'application/json' } });
    expect([url, response.statusCode, response.json().error.code]).toEqual([url, 403, 'FORBIDDEN']);
  }
  expect(guarded).toBe(7);
  expect(await snapshot([t])).toEqual(before);
  await app.fastify.close();
});
