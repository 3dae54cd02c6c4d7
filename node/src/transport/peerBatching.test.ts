/**
 * How the peer client groups replica calls into batches, against a real peer server on loopback
 * whose read handler can be held: calls of one event-loop turn travel together; a batch stays
 * under the byte bound (so large objects are never refused as one oversized body); and a call is
 * bound by its own timeout inside a batch. The HTTP requests are counted on the server.
 */
import type { FastifyInstance } from 'fastify';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { HttpPeerTransport } from './peerClient';
import { BATCH_BYTES_MAX } from './peerMessages';
import { buildPeerServer, type PeerHandlers } from './peerServer';

/** Handlers for the two batchable methods; the others are never called here. */
function handlers(read: PeerHandlers['read']): PeerHandlers {
  const unused = async (): Promise<never> => {
    throw new Error('not used in this test');
  };
  return {
    ping: unused,
    replicate: async (r) => ({ durable: r.sync }),
    read,
    coordinate: unused,
    gossip: unused,
    join: unused,
    leave: unused,
    bucketProps: unused,
    aeTree: unused,
    aeKeys: unused,
    handoffBatch: unused,
    handoffStatus: unused,
    handoffDone: unused,
    abort: unused,
  };
}

interface Peer {
  readonly app: FastifyInstance;
  readonly url: string;
  /** Paths of the HTTP requests the server received, in order. */
  readonly paths: string[];
  /** Reads waiting for release(); a held read answers when released. */
  readonly held: (() => void)[];
}

const opened: { close(): Promise<unknown> }[] = [];

async function peer(options: { holdReads: boolean; bodyLimitBytes?: number }): Promise<Peer> {
  const held: (() => void)[] = [];
  const read: PeerHandlers['read'] = (r) =>
    options.holdReads ? new Promise((resolve) => held.push(() => resolve({ object: Uint8Array.of(r.partition) }))) : Promise.resolve({ object: Uint8Array.of(r.partition) });
  const app = buildPeerServer({ handlers: handlers(read), describeError: () => ({ status: 500, code: 'INTERNAL', message: 'x' }), bodyLimitBytes: options.bodyLimitBytes ?? 1 << 20, inFlightMax: 10_000 });
  const paths: string[] = [];
  app.addHook('onRequest', (request, _reply, done) => {
    paths.push(request.url);
    done();
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  opened.push(app);
  return { app, url, paths, held };
}

function transport(): HttpPeerTransport {
  const t = new HttpPeerTransport({ connectionsPerPeer: 8, inFlightPerPeerMax: 1000, poolsMax: 10 });
  opened.push(t);
  return t;
}

afterEach(async () => {
  for (let item = opened.pop(); item !== undefined; item = opened.pop()) await item.close();
});

const read = (partition: number) => ({ partition, bucket: 'b', key: `k${partition}` });

test('calls of one turn travel as one batch; calls of later turns as further batches', async () => {
  const p = await peer({ holdReads: false });
  const t = transport();
  const first = [0, 1, 2].map((i) => t.call(p.url, 'read', read(i), 30_000));
  await nextTurn();
  const second = [3, 4].map((i) => t.call(p.url, 'read', read(i), 30_000));
  const objects = (await Promise.all([...first, ...second])).map((r) => r.object);
  expect(objects).toEqual([0, 1, 2, 3, 4].map((i) => Buffer.from([i])));
  expect(p.paths).toEqual(['/peer/v1/batch', '/peer/v1/batch']);
});

test('no call waits past its own timeout: a batch ends with the earliest deadline of its calls', async () => {
  const p = await peer({ holdReads: true });
  const t = transport();
  // Far beyond the test's own time limit: if the batch waited for the longest deadline, this test would fail.
  const patient = t.call(p.url, 'read', read(0), 600_000);
  const hasty = t.call(p.url, 'read', read(1), 50);
  await expect(hasty).rejects.toMatchObject({ code: 'PEER_UNREACHABLE', unreachable: true });
  // They travelled together, so the patient one shares the batch's fate.
  await expect(patient).rejects.toMatchObject({ code: 'PEER_UNREACHABLE', unreachable: true });
  expect(p.paths).toEqual(['/peer/v1/batch']);
  for (const release of p.held.splice(0)) release();
});

test('large objects made in one turn are split into batches under the byte bound, so the peer accepts every one', async () => {
  // The peer accepts 1 MiB bodies; five objects of 40 % of the batch bound would be ~1 MiB in one batch.
  const p = await peer({ holdReads: false, bodyLimitBytes: 1 << 20 });
  const t = transport();
  const object = new Uint8Array(Math.floor(BATCH_BYTES_MAX * 0.4));
  const writes = Array.from({ length: 5 }, (_, i) => t.call(p.url, 'replicate', { partition: i, bucket: 'b', key: `k${i}`, object, sync: false }, 30_000));
  expect(await Promise.all(writes)).toEqual(Array.from({ length: 5 }, () => ({ durable: false })));
  expect(p.paths).toEqual(['/peer/v1/batch', '/peer/v1/batch', '/peer/v1/replicate']);
});
