/**
 * DynamoClient against small scripted HTTP servers (node:http on loopback), for the behaviour a
 * healthy real node cannot be made to show on demand: 503 with Retry-After, rotation, malformed
 * answers, route 404s. Each test scripts the answers and counts the requests each server saw.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoClient } from './client';
import { DynamoError } from './errors';
import { parseRetryAfterMs } from './transport';

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

interface Stub {
  readonly url: string;
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }[];
  readonly server: Server;
}

const stubs: Stub[] = [];
const clients: DynamoClient[] = [];

async function stub(handler: Handler): Promise<Stub> {
  const requests: Stub['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, body, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const s = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
  stubs.push(s);
  return s;
}

function client(endpoints: string[], extra: Partial<ConstructorParameters<typeof DynamoClient>[0]> = {}): DynamoClient {
  // Routing 'any': these tests count requests, and a partition-aware client would add ring fetches.
  const c = new DynamoClient({ endpoints, timeoutMs: 2000, retries: 2, backoffMsBase: 1, retryAfterMsMax: 20, routing: 'any', ...extra });
  clients.push(c);
  return c;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(stubs.splice(0).map(async (s) => {
    s.server.closeAllConnections();
    s.server.close();
    await once(s.server, 'close');
  }));
});

test('a 503 with Retry-After moves to the next endpoint, and the answer of that endpoint is returned', async () => {
  const busy = await stub((_req, _body, res) => json(res, 503, { error: { code: 'OVERLOADED', message: 'busy' } }, { 'retry-after': '1' }));
  const fine = await stub((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-dynamo-context': 'ctx1' });
    res.end('v');
  });
  // Two requests: rotation makes the first start at `busy` and the second at `fine`.
  const c = client([busy.url, fine.url]);
  const first = await c.get('b', 'k');
  const second = await c.get('b', 'k');
  expect(first.values[0]!.value.toString()).toBe('v');
  expect(second.context).toBe('ctx1');
  expect(busy.requests).toHaveLength(1);
  expect(fine.requests).toHaveLength(2);
});

test('retries of a single endpoint are bounded and end in the typed 503 error with Retry-After', async () => {
  const busy = await stub((_req, _body, res) => json(res, 503, { error: { code: 'OVERLOADED', message: 'busy' } }, { 'retry-after': '1' }));
  const c = client([busy.url], { retries: 2 });
  const error = await c.get('b', 'k').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(DynamoError);
  expect(error).toMatchObject({ code: 'OVERLOADED', status: 503, retryAfterMs: 1000, attempts: 3 });
  expect(busy.requests).toHaveLength(3);
});

test('a 4xx answer is final: no other endpoint is tried, and the catalogue code comes through', async () => {
  const bad = await stub((_req, _body, res) => json(res, 413, { error: { code: 'VALUE_TOO_LARGE', message: 'too big' } }));
  const other = await stub((_req, _body, res) => json(res, 500, {}));
  const c = client([bad.url, other.url]);
  await expect(c.put('b', 'k', 'x')).rejects.toMatchObject({ code: 'VALUE_TOO_LARGE', status: 413, message: 'too big' });
  expect(other.requests).toHaveLength(0);
});

test('a 404 about the route is an error, a 404 about the key is found=false with the tombstone context', async () => {
  const route = await stub((_req, _body, res) => json(res, 404, { error: { code: 'NOT_FOUND', message: 'No such route.' } }));
  const key = await stub((_req, _body, res) => json(res, 404, { error: { code: 'KEY_NOT_FOUND', message: 'gone' } }, { 'x-dynamo-context': 'tomb' }));
  await expect(client([route.url]).get('b', 'k')).rejects.toMatchObject({ code: 'NOT_FOUND', status: 404 });
  await expect(client([key.url]).get('b', 'k')).resolves.toEqual({ found: false, values: [], context: 'tomb' });
});

test('a 300 answer decodes into siblings with bytes, content types and dates', async () => {
  const s = await stub((_req, _body, res) =>
    json(res, 300, {
      context: 'C',
      siblings: [
        { value: Buffer.from('one').toString('base64'), contentType: 'text/plain', lastModified: '2026-11-25T10:00:00.000Z' },
        { value: Buffer.from([0, 1, 2]).toString('base64'), contentType: 'application/octet-stream', lastModified: '2026-11-25T10:00:01.000Z' },
      ],
    }),
  );
  const result = await client([s.url]).get('b', 'k');
  expect(result.context).toBe('C');
  expect(result.values.map((v) => v.value)).toEqual([Buffer.from('one'), Buffer.from([0, 1, 2])]);
  expect(result.values[1]!.lastModified.toISOString()).toBe('2026-11-25T10:00:01.000Z');
});

test('a malformed siblings body is a PROTOCOL_ERROR, not a crash or an untyped value', async () => {
  const s = await stub((_req, _body, res) => json(res, 300, { context: 'C', siblings: [{ nope: 1 }] }));
  await expect(client([s.url]).get('b', 'k')).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
});

test('put sends the context, content type, quorum parameters and bearer token; keys are URL-encoded', async () => {
  const s = await stub((_req, _body, res) => {
    res.writeHead(204, { 'x-dynamo-context': 'new' });
    res.end();
  });
  const c = client([s.url], { token: 't0k' });
  const result = await c.put('my bucket', 'a/b?c', Buffer.from([9]), { context: 'old', contentType: 'application/x-thing', w: 2, dw: 'one' });
  expect(result).toEqual({ context: 'new' });
  const seen = s.requests[0]!;
  expect(seen.method).toBe('PUT');
  expect(seen.url).toBe('/v1/buckets/my%20bucket/keys/a%2Fb%3Fc?w=2&dw=one');
  expect(seen.headers['x-dynamo-context']).toBe('old');
  expect(seen.headers['content-type']).toBe('application/x-thing');
  expect(seen.headers.authorization).toBe('Bearer t0k');
  expect(seen.body).toEqual(Buffer.from([9]));
});

test('delete without a context reads the key first and deletes with the context it saw', async () => {
  const s = await stub((req, _body, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-dynamo-context': 'seen' });
      res.end('v');
    } else {
      res.writeHead(204);
      res.end();
    }
  });
  await client([s.url]).delete('b', 'k');
  expect(s.requests.map((r) => r.method)).toEqual(['GET', 'DELETE']);
  expect(s.requests[1]!.headers['x-dynamo-context']).toBe('seen');
});

test('invalid arguments are refused before anything is sent', async () => {
  const s = await stub((_req, _body, res) => json(res, 500, {}));
  const c = client([s.url]);
  await expect(c.get('', 'k')).rejects.toMatchObject({ code: 'ARGUMENT_INVALID' });
  await expect(c.put('b', 'k', 'v', { w: 0 })).rejects.toMatchObject({ code: 'ARGUMENT_INVALID' });
  expect(() => new DynamoClient({ endpoints: ['ftp://x'] })).toThrow(DynamoError);
  expect(s.requests).toHaveLength(0);
});

test('Retry-After is read as seconds or as an HTTP date', () => {
  const nowMs = Date.parse('2026-11-25T10:00:00Z');
  expect(parseRetryAfterMs('2', nowMs)).toBe(2000);
  expect(parseRetryAfterMs('Wed, 25 Nov 2026 10:00:03 GMT', nowMs)).toBe(3000);
  expect(parseRetryAfterMs('soon', nowMs)).toBeUndefined();
  expect(parseRetryAfterMs(undefined, nowMs)).toBeUndefined();
});
