/**
 * The peer protocol over real HTTP on loopback: requests round-trip through msgpack and the
 * strict decoders, errors keep their catalogue code, a wrong secret is refused, an unreachable
 * peer is reported as such, and random bytes never get past the decoders.
 */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { addMember, createRing, ringDigest } from '../core/ring';
import { beginJoin } from '../core/transition';
import { HttpPeerTransport } from './peerClient';
import { PeerDecodeError, decodeRequest, decodeResponse, decodeRing, packMessage, unpackMessage, PEER_METHODS } from './peerMessages';
import { buildPeerServer, type PeerHandlers } from './peerServer';

const ring = createRing('c1', { id: 'n1', clientUrl: 'http://127.0.0.1:8080', peerUrl: 'http://127.0.0.1:9080' }, 8, 3);

const handlers: PeerHandlers = {
  ping: async (r) => ({ id: `pong-${r.from}`, ringVersion: 7 }),
  replicate: async (r) => ({ durable: r.sync }),
  read: async (r) => {
    if (r.key === 'boom') throw Object.assign(new Error('corrupt'), { code: 'STORAGE_CORRUPT', status: 500 });
    return { object: r.key === 'missing' ? null : Uint8Array.from([1, 2, 3, r.partition]) };
  },
  coordinate: async () => {
    throw Object.assign(new Error('no quorum'), { code: 'QUORUM_UNAVAILABLE', status: 503 });
  },
  gossip: async (r) => (r.ring === undefined ? { digest: r.digest } : { digest: ringDigest(r.ring), ring: r.ring }),
  join: async () => ({ ring }),
  leave: async () => ({ ring }),
  bucketProps: async () => ({ ring }),
  aeTree: async (r) => ({ root: new Uint8Array(8), branches: new Uint8Array(8 * r.branchCount), leaves: new Uint8Array(8 * r.leavesPerBranch * r.branches.length) }),
  aeKeys: async (r) => ({ keys: r.segments.map((s) => ({ bucket: 'b', key: `k${s}`, digest: '0123456789abcdef' })), truncated: false }),
  handoffBatch: async (r) => ({ cursor: r.cursor }),
  handoffStatus: async () => ({ cursor: null }),
  handoffDone: async () => ({ ring }),
  abort: async () => ({ ring, aborted: { joining: ['n1'], leaving: [], transfers: 3, transfersDone: 1 } }),
};

async function start(peerSecret?: string): Promise<{ app: FastifyInstance; url: string }> {
  const app = buildPeerServer({
    handlers,
    describeError: (e) => ({ status: (e as { status?: number }).status ?? 500, code: (e as { code?: string }).code ?? 'INTERNAL', message: (e as Error).message }),
    bodyLimitBytes: 1 << 20,
    inFlightMax: 100,
    ...(peerSecret === undefined ? {} : { peerSecret }),
  });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url: address };
}

describe('peer transport over loopback', () => {
  let server: { app: FastifyInstance; url: string };
  const client = new HttpPeerTransport();
  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await client.close();
    await server.app.close();
  });

  test('calls round-trip typed values', async () => {
    expect(await client.call(server.url, 'ping', { from: 'n2' }, 1000)).toEqual({ id: 'pong-n2', ringVersion: 7 });
    expect(await client.call(server.url, 'replicate', { partition: 1, bucket: 'b', key: 'k', object: Uint8Array.from([9]), sync: true }, 1000)).toEqual({ durable: true });
    expect((await client.call(server.url, 'read', { partition: 1, bucket: 'b', key: 'k' }, 1000)).object).toEqual(Buffer.from([1, 2, 3, 1]));
    expect((await client.call(server.url, 'read', { partition: 1, bucket: 'b', key: 'missing' }, 1000)).object).toBeNull();
    expect((await client.call(server.url, 'gossip', { ring }, 1000)).ring).toEqual(ring);
    expect(await client.call(server.url, 'gossip', { digest: ringDigest(ring) }, 1000)).toEqual({ digest: ringDigest(ring) });
    expect(await client.call(server.url, 'abort', {}, 1000)).toEqual({ ring, aborted: { joining: ['n1'], leaving: [], transfers: 3, transfersDone: 1 } });
    // An aborted change names members of the ring it comes with, nothing else.
    expect(() => decodeResponse.abort(unpackMessage(packMessage({ ring, aborted: { joining: [7], leaving: [], transfers: 0, transfersDone: 0 } })))).toThrow(PeerDecodeError);
    expect(() => decodeResponse.abort(unpackMessage(packMessage({ ring, aborted: { joining: ['n9'], leaving: [], transfers: 0, transfersDone: 0 } })))).toThrow(PeerDecodeError);
  });

  test('calls made together travel as one batch; each gets its own result, and one failure fails only itself', async () => {
    let batches = 0;
    let requests = 0;
    const count = (request: { url?: string }) => {
      requests++;
      if (request.url === '/peer/v1/batch') batches++;
    };
    server.app.server.on('request', count);
    const reads = Array.from({ length: 20 }, (_, i) => client.call(server.url, 'read', { partition: i, bucket: 'b', key: i === 7 ? 'boom' : 'k' }, 1000));
    const settled = await Promise.allSettled(reads);
    settled.forEach((result, i) => {
      if (i === 7) expect(result).toMatchObject({ status: 'rejected', reason: { code: 'STORAGE_CORRUPT', unreachable: false } });
      else expect(result).toMatchObject({ status: 'fulfilled', value: { object: Buffer.from([1, 2, 3, i]) } });
    });
    server.app.server.off('request', count);
    expect([requests, batches]).toEqual([1, 1]);
  });

  test('handler errors keep their code and are not mistaken for an unreachable peer', async () => {
    const call = client.call(server.url, 'coordinate', { bucket: 'b', key: 'k', value: new Uint8Array(0), contentType: 'x', deleted: false, lastModifiedMs: 1, context: Uint8Array.from([1, 0]), w: 2, dw: 0, pw: 0, hops: 1 }, 1000);
    await expect(call).rejects.toMatchObject({ code: 'QUORUM_UNAVAILABLE', unreachable: false });
  });

  test('a closed port is reported as unreachable', async () => {
    const closed = await start();
    const url = closed.url;
    await closed.app.close();
    await expect(client.call(url, 'ping', { from: 'x' }, 500)).rejects.toMatchObject({ code: 'PEER_UNREACHABLE', unreachable: true });
  });

  test('with a peer secret, calls without it are refused and calls with it pass', async () => {
    const guarded = await start('s3cret');
    const withSecret = new HttpPeerTransport({ connectionsPerPeer: 2, inFlightPerPeerMax: 10, poolsMax: 10, peerSecret: 's3cret' });
    try {
      await expect(client.call(guarded.url, 'ping', { from: 'x' }, 1000)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
      expect((await withSecret.call(guarded.url, 'ping', { from: 'x' }, 1000)).id).toBe('pong-x');
      // Wrong secrets of the same length, shorter and longer are all refused alike.
      for (const wrong of ['s3creT', 's3cre', 's3cret-and-more']) {
        const other = new HttpPeerTransport({ connectionsPerPeer: 1, inFlightPerPeerMax: 10, poolsMax: 10, peerSecret: wrong });
        await expect(other.call(guarded.url, 'ping', { from: 'x' }, 1000)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
        await other.close();
      }
    } finally {
      await withSecret.close();
      await guarded.app.close();
    }
  });

  test('past its in-flight bound the peer port answers 503 OVERLOADED with Retry-After; a batch counts each of its calls', async () => {
    const release: (() => void)[] = [];
    const blocking = buildPeerServer({
      handlers: { ...handlers, read: () => new Promise((resolve) => release.push(() => resolve({ object: null }))) },
      describeError: () => ({ status: 500, code: 'INTERNAL', message: 'x' }),
      bodyLimitBytes: 1 << 20,
      inFlightMax: 3,
    });
    const url = await blocking.listen({ host: '127.0.0.1', port: 0 });
    const post = (path: string, body: unknown) => fetch(`${url}/peer/v1/${path}`, { method: 'POST', headers: { 'content-type': 'application/msgpack' }, body: packMessage(body) });
    try {
      const read = { partition: 1, bucket: 'b', key: 'k' };
      const held = post('batch', { calls: [{ method: 'read', request: read }, { method: 'read', request: read }] });
      for (let i = 0; i < 100 && release.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      // Two calls in flight: a batch of two more would pass the bound of three, one more call fits.
      const refused = await post('batch', { calls: [{ method: 'read', request: read }, { method: 'read', request: read }] });
      expect([refused.status, refused.headers.get('retry-after'), (unpackMessage(Buffer.from(await refused.arrayBuffer())) as { code: string }).code]).toEqual([503, '1', 'OVERLOADED']);
      const admitted = post('read', read);
      for (let i = 0; i < 100 && release.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
      for (const r of release) r();
      expect([(await held).status, (await admitted).status]).toEqual([200, 200]);
    } finally {
      await blocking.close();
    }
  });
});

describe('peer decoders', () => {
  test('random msgpack values never pass a decoder untyped: they decode fully or throw PeerDecodeError', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PEER_METHODS), fc.anything(), (method, value) => {
        try {
          decodeRequest[method](unpackMessage(packMessage(value)));
        } catch (e) {
          expect(e).toBeInstanceOf(PeerDecodeError);
        }
      }),
    );
  });

  test('random bytes are rejected as PeerDecodeError or decode to something a decoder then checks', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeRequest.replicate(unpackMessage(bytes));
        } catch (e) {
          expect(e).toBeInstanceOf(PeerDecodeError);
        }
      }),
    );
  });

  test('a ring with a pending change and handoff batches round-trip; bad transfers and batches are refused', () => {
    const three = [2, 3].reduce((r, i) => { const c = addMember(r, { id: `n${i}`, clientUrl: `http://h${i}:1`, peerUrl: `http://h${i}:2` }); if (!c.ok) throw new Error(c.message); return c.ring; }, ring);
    const change = beginJoin(three, { id: 'n4', clientUrl: 'http://h4:1', peerUrl: 'http://h4:2' });
    if (!change.ok) throw new Error(change.message);
    expect(change.ring.pending?.transfers.length).toBeGreaterThan(0);
    expect(decodeRing(unpackMessage(packMessage(change.ring)))).toEqual(change.ring);
    const pending = change.ring.pending!;
    const badState = { ...change.ring, pending: { ...pending, transfers: [{ ...pending.transfers[0]!, state: 'maybe' }] } };
    expect(() => decodeRing(unpackMessage(packMessage(badState)))).toThrow(PeerDecodeError);
    const stranger = { ...change.ring, pending: { ...pending, transfers: [{ ...pending.transfers[0]!, to: 'n9' }] } };
    expect(() => decodeRing(unpackMessage(packMessage(stranger)))).toThrow(PeerDecodeError);
    const batch = { transferId: '5-3-n4', partition: 3, entries: [{ bucket: 'b', key: 'k', object: Uint8Array.of(1, 2) }], checksum: 123, cursor: Uint8Array.of(1, 0, 0, 0, 3) };
    expect(decodeRequest.handoffBatch(unpackMessage(packMessage(batch)))).toEqual(batch);
    expect(() => decodeRequest.handoffBatch(unpackMessage(packMessage({ ...batch, checksum: -1 })))).toThrow(PeerDecodeError);
    expect(decodeResponse.handoffStatus(unpackMessage(packMessage({ cursor: null })))).toEqual({ cursor: null });
  });

  test('anti-entropy messages round-trip, and out-of-range segments, branches or digests are refused', () => {
    const tree = { partition: 3, branchCount: 4, leavesPerBranch: 8, branches: [0, 3] };
    expect(decodeRequest.aeTree(unpackMessage(packMessage(tree)))).toEqual(tree);
    expect(() => decodeRequest.aeTree(unpackMessage(packMessage({ ...tree, branches: [4] })))).toThrow(PeerDecodeError);
    const keys = { partition: 3, branchCount: 4, leavesPerBranch: 8, segments: [31], keysMax: 10 };
    expect(decodeRequest.aeKeys(unpackMessage(packMessage(keys)))).toEqual(keys);
    expect(() => decodeRequest.aeKeys(unpackMessage(packMessage({ ...keys, segments: [32] })))).toThrow(PeerDecodeError);
    expect(() => decodeResponse.aeKeys(unpackMessage(packMessage({ keys: [{ bucket: 'b', key: 'k', digest: 'xyz' }], truncated: false })))).toThrow(PeerDecodeError);
    expect(() => decodeResponse.aeTree(unpackMessage(packMessage({ root: new Uint8Array(7), branches: new Uint8Array(0), leaves: new Uint8Array(0) })))).toThrow(PeerDecodeError);
  });

  test('a ring naming unknown owners is refused', () => {
    const bad = { ...ring, plan: { ...ring.plan, owners: ring.plan.owners.map(() => ['ghost']) } };
    expect(() => decodeRing(unpackMessage(packMessage(bad)))).toThrow(PeerDecodeError);
  });
});
