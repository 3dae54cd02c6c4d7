/**
 * The ceiling for the benchmarks: a bare node:http server that does no work. GET answers a fixed
 * body of --value-bytes (1 KiB by default), PUT reads and discards the body and answers 204, as a
 * store with free storage and free bookkeeping would. Anything dynamokv is slower by is its cost.
 *
 * Run as its own process: `node dist/bench/lib/bareServer.js --port 9000 [--host 127.0.0.1]`.
 * It prints `listening <host>:<port>` once ready and stops on SIGTERM/SIGINT.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    'value-bytes': { type: 'string', default: '1024' },
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

const server = createServer((request, response) => {
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
