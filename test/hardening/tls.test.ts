/**
 * TLS on real node processes, with a CA and certificate made by openssl for this run.
 *
 * Two nodes serve HTTPS on the client port and, with --peer-tls, on the peer port too; the
 * second joins the first and a w=2 write replicates, so node-to-node calls go over TLS and check
 * the peer's certificate against --peer-tls-ca-file. Shown: https with the CA works (raw, through
 * DynamoClient's `ca` and through the CLI's --ca-file); https without the CA is refused by the
 * client (unknown issuer); plain http to the TLS client port or peer port gets no answer.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DynamoClient } from '../../client/src/index';
import { decodeObject } from '../../node/src/storage/objectCodec';
import { partitionOf } from '../../node/src/core/partition';
import { HttpPeerTransport } from '../../node/src/transport/peerClient';
import { CLI_MAIN, NODE_BINARY, ensureBuilt } from '../support/nodeProcess';
import { TestNode, call, makeTestCerts, stopAllTestNodes, type TestCerts } from './support';

const PARTITIONS = 16;

let dir: string;
let certs: TestCerts;
let n1: TestNode;
let n2: TestNode;

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'dynamokv-tls-'));
  certs = makeTestCerts(dir);
  const args = ['--tls-cert-file', certs.certFile, '--tls-key-file', certs.keyFile, '--peer-tls', '--peer-tls-ca-file', certs.caFile, '--partitions', String(PARTITIONS), '--gossip-interval-ms', '200'];
  n1 = await TestNode.start({ nodeId: 'n1', dataDir: join(dir, 'n1'), args, tlsCa: certs.ca });
  n2 = await TestNode.start({ nodeId: 'n2', dataDir: join(dir, 'n2'), args, tlsCa: certs.ca });
});
afterAll(async () => {
  await stopAllTestNodes();
  rmSync(dir, { recursive: true, force: true });
});

test('a node joins over peer TLS and a w=2 write replicates; members advertise https URLs', async () => {
  const joined = await n2.call('POST', '/v1/admin/join', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ seed: `127.0.0.1:${n1.peerPort}` }) });
  expect(joined.status).toBe(200);
  let status = 0;
  for (let attempt = 0; attempt < 50 && status !== 204; attempt++) {
    status = (await n1.call('PUT', '/v1/buckets/b/keys/k?w=2', { headers: { 'content-type': 'text/plain' }, body: 'over tls' })).status;
    if (status !== 204) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  expect(status).toBe(204);
  const members = JSON.parse((await n2.call('GET', '/v1/members')).body) as { members: { id: string; clientUrl: string; peerUrl: string }[] };
  for (const m of members.members) expect([m.clientUrl, m.peerUrl]).toEqual([expect.stringMatching(/^https:\/\//), expect.stringMatching(/^https:\/\//)]);
  // The second node's own copy, read over its TLS peer port with the CA.
  const peers = new HttpPeerTransport({ connectionsPerPeer: 1, inFlightPerPeerMax: 4, poolsMax: 4, tls: { ca: certs.ca } });
  try {
    const { object } = await peers.call(`https://127.0.0.1:${n2.peerPort}`, 'read', { partition: partitionOf('b', 'k', PARTITIONS), bucket: 'b', key: 'k' }, 3000);
    expect(Buffer.from(decodeObject(object!).siblings[0]!.value).toString()).toBe('over tls');
  } finally {
    await peers.close();
  }
});

test('https with the CA works through DynamoClient and the CLI', async () => {
  const client = new DynamoClient({ endpoints: [n1.url, n2.url], ca: certs.ca });
  try {
    await client.put('b', 'client', 'hello');
    expect((await client.get('b', 'client')).values[0]?.value.toString()).toBe('hello');
  } finally {
    await client.close();
  }
  const { stdout } = await promisify(execFile)(NODE_BINARY, [CLI_MAIN, '-e', n2.url, '--ca-file', certs.caFile, 'get', 'b', 'client']);
  expect(stdout.trim()).toBe('hello');
});

test('https without the CA is refused by the client; plain http to a TLS port gets no HTTP answer', async () => {
  await expect(call(n1.url, 'GET', '/healthz')).rejects.toThrow(/self-signed|unable to verify|issuer|certificate/i);
  await expect(call(`http://127.0.0.1:${n1.port}`, 'GET', '/healthz')).rejects.toThrow();
  const plainPeers = new HttpPeerTransport({ connectionsPerPeer: 1, inFlightPerPeerMax: 4, poolsMax: 4 });
  try {
    await expect(plainPeers.call(`http://127.0.0.1:${n1.peerPort}`, 'ping', { from: 'x' }, 2000)).rejects.toMatchObject({ unreachable: true });
  } finally {
    await plainPeers.close();
  }
  // The nodes are unharmed by the failed handshakes.
  expect((await n1.call('GET', '/healthz')).status).toBe(200);
});
