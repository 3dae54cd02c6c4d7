/**
 * The single-node floor (issue 2): the least a key-value node on this stack can do per request.
 * It serves the same key path as dynamokv, with the same HTTP framework and the same storage
 * engine, but nothing else: GET is one RocksDB point read answered with the stored bytes, PUT is
 * one RocksDB batch of the body as it came, answered 204. No versions, contexts, MACs, object
 * encoding, locks, metrics, validation beyond the route, or logging. What dynamokv costs beyond
 * this is the cost of being Dynamo (versions and contexts) rather than of serving HTTP and RocksDB.
 *
 *   node dist/bench/lib/floorServer.js --port 9000 --data-dir /tmp/x [--framework fastify|http]
 *
 * --framework http serves the same two routes from node:http directly, so the difference between
 * the two floors is fastify's share. It prints `listening <host>:<port>` once ready and stops on
 * SIGTERM/SIGINT, closing RocksDB.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { RocksDbEngine } from '../../node/src/storage/rocksdb';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    'data-dir': { type: 'string' },
    framework: { type: 'string', default: 'fastify' },
  },
});

const port = Number(values.port);
const dataDir = values['data-dir'];
const framework = values.framework;
if (!Number.isInteger(port) || port <= 0 || port > 65_535 || dataDir === undefined || (framework !== 'fastify' && framework !== 'http')) {
  process.stderr.write('usage: floorServer --port <1..65535> --data-dir <dir> [--host 127.0.0.1] [--framework fastify|http]\n');
  process.exit(2);
}

/** Keys carry the bucket so two buckets never collide, as dynamokv's data keys do. */
function storageKey(bucket: string, key: string): Buffer {
  return Buffer.from(`${bucket}\u0000${key}`, 'utf8');
}

const BODY_BYTES_MAX = 1_048_576;
const KEY_PATH = /^\/v1\/buckets\/([^/]+)\/keys\/([^/?]+)/;

async function main(): Promise<void> {
  const engine = new RocksDbEngine({ path: dataDir as string });
  await engine.open();
  const close = framework === 'fastify' ? await serveFastify(engine) : await serveHttp(engine);
  process.stdout.write(`listening ${values.host}:${port}\n`);
  const stop = (): void => {
    void close()
      .then(() => engine.close())
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function serveFastify(engine: RocksDbEngine): Promise<() => Promise<void>> {
  const app = Fastify({ logger: false, bodyLimit: BODY_BYTES_MAX });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.get<{ Params: { bucket: string; key: string } }>('/v1/buckets/:bucket/keys/:key', async (request, reply) => {
    const stored = await engine.get(storageKey(request.params.bucket, request.params.key));
    if (stored === undefined) return reply.code(404).send();
    return reply.code(200).type('application/octet-stream').send(Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength));
  });
  app.put<{ Params: { bucket: string; key: string } }>('/v1/buckets/:bucket/keys/:key', async (request, reply) => {
    const body = request.body instanceof Uint8Array ? request.body : Buffer.alloc(0);
    await engine.batch([{ type: 'put', key: storageKey(request.params.bucket, request.params.key), value: body }]);
    return reply.code(204).send();
  });
  app.get('/', async () => 'ok');
  await app.listen({ host: values.host, port });
  return () => app.close();
}

async function serveHttp(engine: RocksDbEngine): Promise<() => Promise<void>> {
  const answer = (response: ServerResponse, status: number, body?: Uint8Array): void => {
    if (body === undefined) {
      response.writeHead(status, { 'content-length': '0' }).end();
      return;
    }
    response.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': String(body.byteLength) }).end(body);
  };
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const match = KEY_PATH.exec(request.url ?? '');
    if (match === null) {
      answer(response, request.url === '/' ? 200 : 404, request.url === '/' ? Buffer.from('ok') : undefined);
      return;
    }
    const key = storageKey(decodeURIComponent(match[1] ?? ''), decodeURIComponent(match[2] ?? ''));
    if (request.method === 'GET') {
      const stored = await engine.get(key);
      answer(response, stored === undefined ? 404 : 200, stored);
      return;
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of request) {
      bytes += (chunk as Buffer).length;
      if (bytes > BODY_BYTES_MAX) {
        answer(response, 413);
        return;
      }
      chunks.push(chunk as Buffer);
    }
    await engine.batch([{ type: 'put', key, value: Buffer.concat(chunks) }]);
    answer(response, 204);
  };
  const server = createServer((request, response) => {
    handle(request, response).catch(() => answer(response, 500));
  });
  await new Promise<void>((resolve) => server.listen(port, values.host, resolve));
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

main().catch((error: unknown) => {
  process.stderr.write(`floorServer failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
