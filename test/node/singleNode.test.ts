/**
 * A real node process on a temporary RocksDB directory, over real HTTP on 127.0.0.1: the Dynamo
 * semantics of issue 2's "Must show", every client error answered with its code while the
 * stored data stays unchanged, overload, restart after SIGTERM, SIGKILL, and start-up errors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeProcess, ensureBuilt, killAllNodes, processExists, runNode } from '../support/nodeProcess';

const KEY = '/v1/buckets/users/keys/alice';

let dir: string;
beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'dynamokv-node-'));
});
afterAll(async () => {
  await killAllNodes();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

async function call(node: NodeProcess, method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
  const response = await fetch(`${node.url}${path}`, { method, body: options.body, headers: options.headers });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

function errorCode(answer: Answer): string | undefined {
  return (JSON.parse(answer.body) as { error?: { code?: string } }).error?.code;
}

/**
 * Sends a PUT whose body stops after `first`; the request stays in flight until finish() sends
 * `rest`, which resolves to the raw HTTP answer.
 */
async function holdPut(node: NodeProcess, path: string, first: string, rest: string): Promise<{ finish(): Promise<string> }> {
  const socket = connect(Number(new URL(node.url).port), '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  let text = '';
  socket.on('data', (chunk) => (text += chunk.toString()));
  const ended = new Promise<string>((resolve) => socket.once('close', () => resolve(text)));
  const length = Buffer.byteLength(first + rest);
  socket.write(`PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n${first}`);
  return {
    finish: () => {
      socket.write(rest);
      return ended;
    },
  };
}

/** Polls /v1/status (outside the in-flight limit) until `count` client requests are admitted. */
async function waitInFlight(node: NodeProcess, count: number): Promise<void> {
  for (let poll = 0; poll < 400; poll++) {
    const status = JSON.parse((await call(node, 'GET', '/v1/status')).body) as { inFlightRequests: number };
    if (status.inFlightRequests === count) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never saw ${count} requests in flight`);
}

describe('one node', () => {
  let node: NodeProcess;
  beforeAll(async () => {
    node = await NodeProcess.start({ nodeId: 'n1', dataDir: join(dir, 'n1'), args: ['--max-value-bytes', '1024', '--max-key-bytes', '64', '--max-in-flight-requests', '1'] });
  });
  afterAll(async () => {
    await node.stop();
  });

  test('siblings, resolution, delete and a put over the tombstone', async () => {
    expect((await call(node, 'PUT', KEY, { body: 'v1', headers: { 'content-type': 'text/plain' } })).status).toBe(204);
    expect((await call(node, 'PUT', KEY, { body: 'v2', headers: { 'content-type': 'text/plain' } })).status).toBe(204);

    const siblings = await call(node, 'GET', KEY);
    expect(siblings.status).toBe(300);
    const body = JSON.parse(siblings.body) as { context: string; siblings: { value: string }[] };
    expect(body.siblings.map((s) => Buffer.from(s.value, 'base64').toString()).sort()).toEqual(['v1', 'v2']);
    expect(siblings.headers.get('x-dynamo-context')).toBe(body.context);

    expect((await call(node, 'PUT', KEY, { body: 'v3', headers: { 'x-dynamo-context': body.context, 'content-type': 'text/plain' } })).status).toBe(204);
    const one = await call(node, 'GET', KEY);
    expect([one.status, one.body, one.headers.get('content-type')]).toEqual([200, 'v3', 'text/plain']);

    const deleted = await call(node, 'DELETE', KEY, { headers: { 'x-dynamo-context': one.headers.get('x-dynamo-context')! } });
    expect(deleted.status).toBe(204);
    const gone = await call(node, 'GET', KEY);
    expect([gone.status, errorCode(gone)]).toEqual([404, 'KEY_NOT_FOUND']);
    const tombstone = gone.headers.get('x-dynamo-context');
    expect(tombstone).toMatch(/^[A-Za-z0-9_-]+$/);

    expect((await call(node, 'PUT', KEY, { body: 'v4', headers: { 'x-dynamo-context': tombstone! } })).status).toBe(204);
    const back = await call(node, 'GET', KEY);
    expect([back.status, back.body]).toEqual([200, 'v4']);
  });

  test('every client error answers its code and leaves the stored value unchanged', async () => {
    const before = await call(node, 'GET', KEY);
    expect(before.status).toBe(200);
    const cases: [string, string, { body?: string; headers?: Record<string, string> }, number, string][] = [
      ['PUT', '/v1/buckets//keys/alice', { body: 'bad' }, 400, 'BUCKET_INVALID'],
      ['PUT', `/v1/buckets/${'b'.repeat(101)}/keys/alice`, { body: 'bad' }, 400, 'BUCKET_INVALID'],
      ['PUT', `/v1/buckets/users/keys/${'k'.repeat(65)}`, { body: 'bad' }, 400, 'KEY_INVALID'],
      ['PUT', KEY, { body: 'x'.repeat(1025) }, 413, 'VALUE_TOO_LARGE'],
      ['PUT', KEY, { body: 'bad', headers: { 'x-dynamo-context': 'AQECbjEB-forged-context' } }, 400, 'CONTEXT_INVALID'],
      ['DELETE', KEY, { headers: { 'x-dynamo-context': 'not a context' } }, 400, 'CONTEXT_INVALID'],
      ['PUT', `${KEY}?returnbody=maybe`, { body: 'bad' }, 400, 'PARAMETER_INVALID'],
      ['DELETE', `${KEY}?cascade=true`, {}, 400, 'PARAMETER_INVALID'],
      ['PUT', KEY, { body: 'bad', headers: { 'content-type': 'not a type' } }, 400, 'CONTENT_TYPE_INVALID'],
      ['POST', KEY, { body: 'bad' }, 405, 'METHOD_NOT_ALLOWED'],
      ['GET', '/v1/nothing-here', {}, 404, 'NOT_FOUND'],
    ];
    for (const [method, path, options, status, code] of cases) {
      const answer = await call(node, method, path, options);
      expect([method, path.slice(0, 40), answer.status, errorCode(answer)]).toEqual([method, path.slice(0, 40), status, code]);
      if (status === 405) expect(answer.headers.get('allow')).toBe('DELETE, GET, PUT');
      const after = await call(node, 'GET', KEY);
      expect([after.status, after.body, after.headers.get('x-dynamo-context')]).toEqual([200, before.body, before.headers.get('x-dynamo-context')]);
    }
  });

  test('above maxInFlightRequests the node answers 503 OVERLOADED with Retry-After and stores nothing', async () => {
    const before = await call(node, 'GET', KEY);
    // Hold the only slot: a PUT whose body has not finished arriving is in flight.
    const held = await holdPut(node, KEY, 'sl', 'ow');
    await waitInFlight(node, 1);

    const refused = await call(node, 'PUT', KEY, { body: 'refused' });
    expect([refused.status, errorCode(refused), refused.headers.get('retry-after')]).toEqual([503, 'OVERLOADED', '1']);
    // Reads are refused too while the slot is held, so the data is checked after the release.
    expect(await held.finish()).toMatch(/^HTTP\/1\.1 204/);
    // The held PUT was blind, so it sits beside the earlier value; the refused one is nowhere.
    const siblings = JSON.parse((await call(node, 'GET', KEY)).body) as { siblings: { value: string }[] };
    expect(siblings.siblings.map((s) => Buffer.from(s.value, 'base64').toString()).sort()).toEqual([before.body, 'slow'].sort());
  });

  test('/healthz, /readyz, /v1/status, /metrics and /v1/openapi.json answer', async () => {
    expect((await call(node, 'GET', '/healthz')).status).toBe(200);
    expect((await call(node, 'GET', '/readyz')).status).toBe(200);
    const status = JSON.parse((await call(node, 'GET', '/v1/status')).body) as Record<string, unknown>;
    expect(status).toMatchObject({ nodeId: 'n1', version: expect.any(String), storage: { engine: expect.any(String) } });
    const metrics = await call(node, 'GET', '/metrics');
    expect(metrics.body).toMatch(/^dynamokv_requests_total\{operation="put",status="204"\} \d+$/m);
    expect(metrics.body).toMatch(/^process_cpu_seconds_total /m);
    expect(JSON.parse((await call(node, 'GET', '/v1/openapi.json')).body)).toMatchObject({ openapi: '3.1.0' });
  });
});

test('data survives SIGTERM (exit 0) and a restart on the same directory', async () => {
  const dataDir = join(dir, 'restart');
  const first = await NodeProcess.start({ nodeId: 'r1', dataDir });
  await call(first, 'PUT', KEY, { body: 'durable', headers: { 'content-type': 'text/plain' } });
  const written = await call(first, 'GET', KEY);
  expect(await first.stop('SIGTERM')).toEqual({ code: 0, signal: null });

  const second = await NodeProcess.start({ nodeId: 'r1', dataDir });
  const read = await call(second, 'GET', KEY);
  expect([read.status, read.body, read.headers.get('content-type'), read.headers.get('x-dynamo-context')]).toEqual([200, 'durable', 'text/plain', written.headers.get('x-dynamo-context')]);
  expect(await second.stop('SIGINT')).toEqual({ code: 0, signal: null });
});

test('SIGTERM lets a request in flight finish before the node exits with code 0', async () => {
  const dataDir = join(dir, 'graceful');
  const node = await NodeProcess.start({ nodeId: 'g1', dataDir, env: { DYNAMOKV_LOG_LEVEL: 'info' } });
  const held = await holdPut(node, KEY, 'fin', 'ish');
  await waitInFlight(node, 1);
  node.child.kill('SIGTERM');
  for (let poll = 0; poll < 400 && !node.logs().includes('shutting down'); poll++) await new Promise((resolve) => setTimeout(resolve, 25));
  expect(node.logs()).toContain('shutting down');

  expect(await held.finish()).toMatch(/^HTTP\/1\.1 204/);
  expect(await node.exited).toEqual({ code: 0, signal: null });
  const again = await NodeProcess.start({ nodeId: 'g1', dataDir });
  expect((await call(again, 'GET', KEY)).body).toBe('finish');
  await again.stop();
});

test('after SIGKILL no process is left and a restarted node still has acknowledged writes', async () => {
  const dataDir = join(dir, 'killed');
  const victim = await NodeProcess.start({ nodeId: 'k1', dataDir });
  await call(victim, 'PUT', KEY, { body: 'acknowledged' });
  expect(await victim.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
  expect(processExists(victim.pid)).toBe(false);

  const revived = await NodeProcess.start({ nodeId: 'k1', dataDir });
  expect((await call(revived, 'GET', KEY)).body).toBe('acknowledged');
  await revived.stop();
});

test('a bad configuration exits with code 2 and names the field, value and source', async () => {
  const bad = await runNode(['--node-id', 'c1', '--port', '99999', '--data-dir', join(dir, 'never')]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('port: must be an integer from 1 to 65535 (got "99999" from --port)');
  const unknown = await runNode(['--node-id', 'c1', '--frobnicate']);
  expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining("Unknown option '--frobnicate'")]);
  const help = await runNode(['--help']);
  expect([help.code, help.stdout]).toEqual([0, expect.stringContaining('--node-id')]);
});
