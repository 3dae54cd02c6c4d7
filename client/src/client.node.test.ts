/**
 * DynamoClient against a real node process (dist/node/src/main.js on a temporary RocksDB
 * directory, loopback only). Proves the client's contract end to end: round trips, siblings and
 * their resolution through contexts, failover past a dead endpoint, and typed server errors.
 */
import { DynamoClient } from './client';
import { DynamoError } from './errors';
import { freePort, startNode, type NodeProcess } from './testing/nodeProcess';
import type { Sibling } from './types';

let node: NodeProcess;
const clients: DynamoClient[] = [];

function client(endpoints = [node.url], extra: Partial<ConstructorParameters<typeof DynamoClient>[0]> = {}): DynamoClient {
  const c = new DynamoClient({ endpoints, timeoutMs: 5000, retries: 1, ...extra });
  clients.push(c);
  return c;
}

const sortedTexts = (values: readonly Sibling[]): string[] => values.map((v) => v.value.toString('utf8')).sort();

beforeAll(async () => {
  node = await startNode({ extraArgs: ['--max-value-bytes', '1024'] });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await node?.stop();
});

test('put, get and delete round-trip a value with its content type and context', async () => {
  const c = client();
  const put = await c.put('rt', 'k1', '{"n":1}', { contentType: 'application/json' });
  expect(typeof put.context).toBe('string');
  const got = await c.get('rt', 'k1');
  expect(got.found).toBe(true);
  expect(got.values).toHaveLength(1);
  expect(got.values[0]!.value.toString()).toBe('{"n":1}');
  expect(got.values[0]!.contentType).toMatch(/^application\/json/);
  await c.delete('rt', 'k1');
  const gone = await c.get('rt', 'k1');
  expect(gone).toMatchObject({ found: false, values: [] });
  // The tombstone's context lets a later put supersede the delete.
  expect(gone.context).toBeDefined();
  await c.put('rt', 'k1', 'back', { context: gone.context! });
  expect((await c.get('rt', 'k1')).values.map((v) => v.value.toString())).toEqual(['back']);
});

test('binary values come back byte for byte', async () => {
  const c = client();
  const bytes = Buffer.from([0, 1, 2, 250, 255, 10, 13]);
  await c.put('rt', 'bin', bytes);
  expect((await c.get('rt', 'bin')).values[0]!.value).toEqual(bytes);
});

test('two puts without a context become siblings, and update resolves them into one value', async () => {
  const c = client();
  await c.put('sib', 'k', 'red');
  await c.put('sib', 'k', 'blue');
  const before = await c.get('sib', 'k');
  expect(sortedTexts(before.values)).toEqual(['blue', 'red']);
  let seen: string[] = [];
  await c.update('sib', 'k', (siblings) => {
    seen = sortedTexts(siblings);
    return seen.join('+');
  });
  expect(seen).toEqual(['blue', 'red']);
  const after = await c.get('sib', 'k');
  expect(after.values.map((v) => v.value.toString())).toEqual(['blue+red']);
});

test('update also runs on an absent key (no siblings) and on a single value', async () => {
  const c = client();
  const counter = (siblings: readonly Sibling[]): string => String(Number(siblings[0]?.value.toString() ?? '0') + 1);
  await c.update('count', 'c', counter);
  await c.update('count', 'c', counter);
  expect((await c.get('count', 'c')).values.map((v) => v.value.toString())).toEqual(['2']);
});

test('a client-wide resolver makes get return one value and write it back', async () => {
  const plain = client();
  await plain.put('res', 'k', 'a');
  await plain.put('res', 'k', 'b');
  const resolving = client([node.url], { resolveSiblings: (siblings) => sortedTexts(siblings).join(',') });
  const got = await resolving.get('res', 'k');
  expect(got.values.map((v) => v.value.toString())).toEqual(['a,b']);
  // Written back: a reader without a resolver sees the single value too.
  expect((await plain.get('res', 'k', { resolveSiblings: false })).values.map((v) => v.value.toString())).toEqual(['a,b']);
});

test('when the first endpoint is a closed port, every call fails over to the live node', async () => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  const c = client([closed, node.url], { retries: 1 });
  // Rotation starts odd calls at the closed port, so both orders are exercised.
  for (let i = 0; i < 4; i++) {
    await c.put('fo', `k${i}`, `v${i}`);
    expect((await c.get('fo', `k${i}`)).values[0]!.value.toString()).toBe(`v${i}`);
  }
});

test('with only dead endpoints the call ends in a typed UNAVAILABLE error after bounded attempts', async () => {
  const c = client([`http://127.0.0.1:${await freePort()}`], { retries: 2, backoffMsBase: 1 });
  await expect(c.get('x', 'y')).rejects.toMatchObject({ code: 'UNAVAILABLE', status: 0, attempts: 3 });
});

test('a value over the limit is a typed VALUE_TOO_LARGE error and the stored value is unchanged', async () => {
  const c = client();
  await c.put('big', 'k', 'small');
  const error = await c.put('big', 'k', Buffer.alloc(2048, 1)).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(DynamoError);
  expect(error).toMatchObject({ code: 'VALUE_TOO_LARGE', status: 413 });
  expect((await c.get('big', 'k')).values.map((v) => v.value.toString())).toEqual(['small']);
});

test('a tampered context is a typed CONTEXT_INVALID error', async () => {
  await expect(client().put('ctx', 'k', 'v', { context: 'not-a-context' })).rejects.toMatchObject({ code: 'CONTEXT_INVALID', status: 400 });
});

test('status names the node', async () => {
  expect((await client().status()).nodeId).toBe('n1');
});
