/**
 * Authentication on each port of real node processes, on and off.
 *
 * Client port: without tokens every route is open; with tokens (the admin token of
 * DYNAMOKV_AUTH_TOKEN, scope lists and a tokens file) each scope is allowed or refused on
 * representative routes (key read/write, ring, bucket properties, admin), through raw HTTP and
 * through the compiled CLI with --token-file.
 * Peer port: without a secret a peer call passes; with one, missing or wrong secrets (of any
 * length) are refused, and a node with the wrong secret cannot join while one with the right
 * secret joins and replicates.
 * Credentials are never logged: the nodes run at trace level, are sent every kind of bad
 * request, and their whole output is searched for each token and secret; a configuration error
 * naming a bad token does not echo it either.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HttpPeerTransport } from '../../node/src/transport/peerClient';
import { CLI_MAIN, NODE_BINARY, ensureBuilt, runNode } from '../support/nodeProcess';
import { TestNode, errorCodeOf, stopAllTestNodes } from './support';

const ADMIN = 'admin-token-0b7c2e9a41';
const READ = 'read-token-5d1f0a7b93';
const WRITE = 'write-token-c28e4f6a17';
const FILE_WRITE = 'file-write-token-93ab1c';
const PEER_SECRET = 'peer-secret-6e0d4b2c88';
const CONTEXT_SECRET = 'context-secret-1f9a7c3e55';
const SECRETS = [ADMIN, READ, WRITE, FILE_WRITE, PEER_SECRET, CONTEXT_SECRET];

const KEY = '/v1/buckets/b/keys/k';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const text = { 'content-type': 'text/plain' };
const json = { 'content-type': 'application/json' };

let dir: string;
beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'dynamokv-auth-'));
});
afterAll(async () => {
  await stopAllTestNodes();
  rmSync(dir, { recursive: true, force: true });
});

test('auth off: the client port and the peer port answer without credentials', async () => {
  const node = await TestNode.start({ nodeId: 'open', dataDir: join(dir, 'open') });
  try {
    expect((await node.call('PUT', KEY, { headers: text, body: 'v' })).status).toBe(204);
    expect((await node.call('GET', KEY)).status).toBe(200);
    expect((await node.call('GET', '/v1/ring')).status).toBe(200);
    expect((await node.call('POST', '/v1/admin/init')).status).toBe(200);
    const peers = new HttpPeerTransport({ connectionsPerPeer: 1, inFlightPerPeerMax: 8, poolsMax: 4 });
    expect((await peers.call(node.peerUrl, 'ping', { from: 'test' }, 2000)).id).toBe('open');
    await peers.close();
  } finally {
    await node.stop();
  }
});

describe('auth on', () => {
  let n1: TestNode;
  let n2: TestNode;
  const env = {
    DYNAMOKV_AUTH_TOKEN: ADMIN,
    DYNAMOKV_READ_TOKENS: `${READ},another-read-token-0001`,
    DYNAMOKV_WRITE_TOKENS: WRITE,
    DYNAMOKV_PEER_SECRET: PEER_SECRET,
    DYNAMOKV_CONTEXT_SECRET: CONTEXT_SECRET,
    DYNAMOKV_LOG_LEVEL: 'trace',
  };
  const tokensFile = () => join(dir, 'tokens.txt');

  beforeAll(async () => {
    writeFileSync(tokensFile(), `# test tokens\nwrite ${FILE_WRITE}\n`);
    n1 = await TestNode.start({ nodeId: 'n1', dataDir: join(dir, 'n1'), env, args: ['--tokens-file', tokensFile(), '--gossip-interval-ms', '200'] });
  });
  afterAll(async () => {
    await n1?.stop();
    await n2?.stop();
  });

  test('client port: 401 without or with an unknown token, each scope allowed or 403 on representative routes', async () => {
    for (const [method, path] of [['GET', KEY], ['PUT', KEY], ['GET', '/v1/ring'], ['GET', '/v1/status'], ['POST', '/v1/admin/init']] as const) {
      const none = await n1.call(method, path, { headers: text, body: method === 'GET' ? undefined : 'v' });
      expect([method, path, none.status, errorCodeOf(none), none.headers['www-authenticate']]).toEqual([method, path, 401, 'UNAUTHORIZED', 'Bearer']);
      const unknown = await n1.call(method, path, { headers: { ...text, ...bearer('not-a-token-of-this-node') }, body: method === 'GET' ? undefined : 'v' });
      expect([method, path, unknown.status, errorCodeOf(unknown)]).toEqual([method, path, 401, 'UNAUTHORIZED']);
    }
    // read: reads only.
    expect((await n1.call('GET', KEY, { headers: bearer(READ) })).status).toBe(404);
    expect((await n1.call('GET', '/v1/ring', { headers: bearer(READ) })).status).toBe(200);
    const readPut = await n1.call('PUT', KEY, { headers: { ...text, ...bearer(READ) }, body: 'v' });
    expect([readPut.status, errorCodeOf(readPut), readPut.headers['www-authenticate']]).toEqual([403, 'FORBIDDEN', 'Bearer error="insufficient_scope", scope="write"']);
    expect((await n1.call('PUT', '/v1/buckets/b/props', { headers: { ...json, ...bearer(READ) }, body: '{"w": 1}' })).status).toBe(403);
    // write (from the environment and from the tokens file): keys and bucket properties, not admin.
    for (const token of [WRITE, FILE_WRITE]) {
      expect((await n1.call('PUT', KEY, { headers: { ...text, ...bearer(token) }, body: `by ${token.slice(0, 4)}` })).status).toBe(204);
      expect((await n1.call('PUT', '/v1/buckets/b/props', { headers: { ...json, ...bearer(token) }, body: '{"w": 1}' })).status).toBe(200);
      const admin = await n1.call('POST', '/v1/admin/init', { headers: bearer(token) });
      expect([admin.status, errorCodeOf(admin)]).toEqual([403, 'FORBIDDEN']);
    }
    // admin: everything.
    expect((await n1.call('POST', '/v1/admin/init', { headers: bearer(ADMIN) })).status).toBe(200);
    expect((await n1.call('DELETE', KEY, { headers: bearer(ADMIN) })).status).toBe(204);
    // Probes and metrics stay open for orchestrators and scrapers.
    for (const path of ['/healthz', '/readyz', '/metrics']) expect((await n1.call('GET', path)).status).toBe(200);
  });

  test('the CLI reads its token from --token-file and is refused without it', async () => {
    const run = promisify(execFile);
    const tokenFile = join(dir, 'cli-token');
    writeFileSync(tokenFile, `${WRITE}\n`);
    const base = [CLI_MAIN, '-e', n1.url];
    const put = await run(NODE_BINARY, [...base, 'put', 'b', 'cli', 'hello', '--token-file', tokenFile]);
    expect(put.stdout).toMatch(/context/i);
    const refused = await run(NODE_BINARY, [...base, 'get', 'b', 'cli']).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect([refused?.code, refused?.stderr]).toEqual([1, expect.stringMatching(/UNAUTHORIZED/)]);
  });

  test('peer port: missing or wrong secrets are refused whatever their length; the right one passes', async () => {
    for (const secret of [undefined, 'peer-secret-6e0d4b2c89', 'short', `${PEER_SECRET}-longer`]) {
      const peers = new HttpPeerTransport({ connectionsPerPeer: 1, inFlightPerPeerMax: 8, poolsMax: 4, ...(secret === undefined ? {} : { peerSecret: secret }) });
      await expect(peers.call(n1.peerUrl, 'ping', { from: 'test' }, 2000)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
      await peers.close();
    }
    const peers = new HttpPeerTransport({ connectionsPerPeer: 1, inFlightPerPeerMax: 8, poolsMax: 4, peerSecret: PEER_SECRET });
    expect((await peers.call(n1.peerUrl, 'ping', { from: 'test' }, 2000)).id).toBe('n1');
    await peers.close();
  });

  test('a node with the wrong peer secret cannot join; one with the right secret joins and replicates', async () => {
    const stranger = await TestNode.start({ nodeId: 'n9', dataDir: join(dir, 'n9'), env: { ...env, DYNAMOKV_PEER_SECRET: 'wrong-peer-secret-00000' } });
    try {
      const refused = await stranger.call('POST', '/v1/admin/join', { headers: { ...json, ...bearer(ADMIN) }, body: JSON.stringify({ seed: `127.0.0.1:${n1.peerPort}` }) });
      expect(refused.status).toBeGreaterThanOrEqual(400);
      expect(JSON.parse((await n1.call('GET', '/v1/ring', { headers: bearer(READ) })).body).members).toHaveLength(1);
    } finally {
      await stranger.stop();
    }
    n2 = await TestNode.start({ nodeId: 'n2', dataDir: join(dir, 'n2'), env, args: ['--gossip-interval-ms', '200'] });
    const joined = await n2.call('POST', '/v1/admin/join', { headers: { ...json, ...bearer(ADMIN) }, body: JSON.stringify({ seed: `127.0.0.1:${n1.peerPort}` }) });
    expect(joined.status).toBe(200);
    // Replicas on both nodes (N=3 on two members keeps two copies): w=2 needs the peer call to pass.
    let stored = 0;
    for (let attempt = 0; attempt < 50 && stored !== 204; attempt++) {
      stored = (await n2.call('PUT', '/v1/buckets/b/keys/replicated?w=2', { headers: { ...text, ...bearer(WRITE) }, body: 'both' })).status;
      if (stored !== 204) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(stored).toBe(204);
    const read = await n1.call('GET', '/v1/buckets/b/keys/replicated?r=2', { headers: bearer(READ) });
    expect([read.status, read.body]).toEqual([200, 'both']);
  });

  test('no token or secret appears in any log line, even at trace level after bad requests', async () => {
    await n1.call('GET', KEY, { headers: bearer(`${READ}x`) });
    await n1.call('PUT', KEY, { headers: { ...text, ...bearer(READ), 'x-dynamo-context': 'garbage' }, body: 'v' });
    await n1.call('GET', '/v1/status', { headers: { authorization: `Basic ${Buffer.from(`u:${ADMIN}`).toString('base64')}` } });
    const logs = [n1.logs(), n2?.logs() ?? ''].join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of SECRETS) expect([secret, logs.includes(secret)]).toEqual([secret, false]);
  });
});

test('a configuration error about a token names the field, never the token', async () => {
  const badToken = 'tiny-token';
  const result = await runNode(['--node-id', 'x', '--data-dir', join(dir, 'never')], { DYNAMOKV_WRITE_TOKENS: `${WRITE},${badToken}`, DYNAMOKV_AUTH_TOKEN: ADMIN });
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/writeTokens: a token must be 16 to 4096 characters long \(got "\[redacted\]"/);
  for (const secret of [badToken, WRITE, ADMIN]) expect(`${result.stdout}${result.stderr}`).not.toContain(secret);
});
