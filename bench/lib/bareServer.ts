/**
 * The ceiling for the benchmarks: a bare node:http server that does no work. GET answers a fixed
 * body of --value-bytes (1 KiB by default), PUT reads and discards the body and answers 204, as a
 * store with free storage and free bookkeeping would. Anything dynamokv is slower by is its cost.
 *
 * With --peers host:port,... it is instead the floor of a replicated store: every client request
 * is also sent to each peer (PUT: the body, as a replica write; GET: a read whose 1 KiB answer
 * comes back) over keep-alive undici pools, as dynamokv's peer client does, and answered after
 * --acks peer replies (1 by default: with the local copy that makes W=2 / R=2 of N=3). Requests
 * a peer receives on /replica are answered at once. No storage, no versions, no batching: what
 * dynamokv costs beyond this is the cost of being a database rather than of replicating.
 *
 * Run as its own process: `node dist/bench/lib/bareServer.js --port 9000 [--host 127.0.0.1]
 * [--peers 127.0.0.1:9001,127.0.0.1:9002 --acks 1]`.
 * It prints `listening <host>:<port>` once ready and stops on SIGTERM/SIGINT.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    'value-bytes': { type: 'string', default: '1024' },
    peers: { type: 'string', default: '' },
    acks: { type: 'string', default: '1' },
  },
});

const port = Number(values.port);
const valueBytes = Number(values['value-bytes']);
if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
  process.stderr.write(`bareServer: --port must be an integer in 1..65535, got ${String(values.port)}\n`);
  process.exit(2);
}
if (!Number.isInteger(valueBytes) || valueBytes < 0) {
  process.stderr.write(`bareServer: --value-bytes must be a non-negative integer, got ${String(values['value-bytes'])}\n`);
  process.exit(2);
}

const body = Buffer.alloc(valueBytes, 0x61);
const getHeaders = { 'content-type': 'application/octet-stream', 'content-length': String(body.length) };
const peers = (values.peers ?? '').split(',').filter((p) => p.length > 0).map((p) => new Pool(`http://${p}`, { connections: 32, pipelining: 1 }));
const acksNeeded = Math.min(Number(values.acks), peers.length);

/** Sends one replica request to every peer and resolves after `acksNeeded` of them answered. */
function replicate(method: 'GET' | 'POST', payload: Buffer | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    let acked = 0;
    let failed = 0;
    for (const peer of peers) {
      peer
        .request({ path: '/replica', method, ...(payload === undefined ? {} : { body: payload }) })
        .then(async (answer) => {
          await answer.body.arrayBuffer();
          if (++acked === acksNeeded) resolve();
        })
        .catch((error: unknown) => {
          if (++failed > peers.length - acksNeeded) reject(error as Error);
        });
    }
  });
}

function fanOut(request: IncomingMessage, response: ServerResponse, payload: Buffer | undefined): void {
  replicate(request.method === 'GET' ? 'GET' : 'POST', payload).then(
    () => {
      if (request.method === 'GET') {
        response.writeHead(200, getHeaders);
        response.end(body);
      } else {
        response.writeHead(204);
        response.end();
      }
    },
    () => {
      response.writeHead(503);
      response.end();
    },
  );
}

const server = createServer((request, response) => {
  const isReplica = request.url === '/replica';
  if (peers.length > 0 && !isReplica) {
    if (request.method === 'GET') return fanOut(request, response, undefined);
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => fanOut(request, response, Buffer.concat(chunks)));
    return;
  }
  if (request.method === 'PUT' || request.method === 'POST') {
    // Drain the body so the connection can be reused, exactly as a real store must.
    request.on('data', () => undefined);
    request.on('end', () => {
      response.writeHead(204);
      response.end();
    });
    return;
  }
  response.writeHead(200, getHeaders);
  response.end(body);
});

server.keepAliveTimeout = 60_000;
server.listen(port, values.host, () => {
  process.stdout.write(`listening ${values.host}:${port}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
