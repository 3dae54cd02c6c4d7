/**
 * The operator's readiness gate on real processes: with --require-admission a node answers
 * /readyz 503 until it was admitted (POST /v1/admin/init on the founder, or a join) and is a
 * normal member; admission survives a restart. --advertise-host puts the given address in the
 * node's URLs, and the other node reaches it through that address.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { http, waitFor } from '../support/cluster';
import { NodeProcess, ensureBuilt, killAllNodes } from '../support/nodeProcess';
import { freePort } from '../support/ports';

const ARGS = ['--require-admission', '--partitions', '16', '--replication', '2', '--gossip-interval-ms', '200'];

async function readiness(node: NodeProcess): Promise<{ status: number; reason?: string }> {
  const answer = await http(node.url, 'GET', '/readyz');
  return { status: answer.status, ...(answer.status === 200 ? {} : { reason: (JSON.parse(answer.body) as { reason: string }).reason }) };
}

describe('--require-admission and --advertise-host', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dynamokv-admission-'));

  beforeAll(() => ensureBuilt());

  afterAll(async () => {
    await killAllNodes();
    rmSync(dir, { recursive: true, force: true });
  });

  test('not ready until init or join, ready after, still ready after a restart', async () => {
    const n1PeerPort = await freePort();
    let n1 = await NodeProcess.start({ nodeId: 'n1', dataDir: join(dir, 'n1'), peerPort: n1PeerPort, args: [...ARGS, '--advertise-host', 'localhost'], waitFor: 'healthy' });
    expect(await readiness(n1)).toEqual({ status: 503, reason: 'not-admitted' });
    const init = await http(n1.url, 'POST', '/v1/admin/init');
    expect(init.status).toBe(200);
    const ring = JSON.parse(init.body) as { members: { id: string; peerUrl: string; state: string }[] };
    expect(ring.members).toEqual([expect.objectContaining({ id: 'n1', peerUrl: `http://localhost:${n1PeerPort}`, state: 'normal' })]);
    expect(await readiness(n1)).toEqual({ status: 200 });

    const n2Dir = join(dir, 'n2');
    let n2 = await NodeProcess.start({ nodeId: 'n2', dataDir: n2Dir, args: ARGS, waitFor: 'healthy' });
    expect(await readiness(n2)).toEqual({ status: 503, reason: 'not-admitted' });
    // The seed is n1's advertised name, so the join itself goes through the advertised address.
    const join2 = await http(n2.url, 'POST', '/v1/admin/join', { body: JSON.stringify({ seed: `localhost:${n1PeerPort}` }), headers: { 'content-type': 'application/json' } });
    expect(join2.status).toBe(200);
    await waitFor('n2 to become ready after its join', 30_000, async () => ((await readiness(n2)).status === 200 ? true : undefined));
    const members = (JSON.parse((await http(n1.url, 'GET', '/v1/ring')).body) as { members: { id: string; state: string }[] }).members;
    expect(members.map((m) => [m.id, m.state])).toEqual([
      ['n1', 'normal'],
      ['n2', 'normal'],
    ]);

    // Each of the two members owns half of the replicas, and every node exports that.
    const metrics = (await http(n1.url, 'GET', '/metrics')).body;
    expect(metrics).toContain('dynamokv_ring_ownership_ratio{member="n1"} 0.5');
    expect(metrics).toContain('dynamokv_ring_ownership_ratio{member="n2"} 0.5');

    await n2.stop();
    n2 = await NodeProcess.start({ nodeId: 'n2', dataDir: n2Dir, args: ARGS, waitFor: 'healthy' });
    await waitFor('n2 to be ready again after a restart, with no admin call', 15_000, async () => ((await readiness(n2)).status === 200 ? true : undefined));
    // It came back on new ports (as a pod comes back on a new IP): the cluster learns the new address.
    await waitFor('n1 to know n2 at its new address', 15_000, async () => {
      const ringNow = JSON.parse((await http(n1.url, 'GET', '/v1/ring')).body) as { members: { id: string; peerUrl: string; up: boolean }[] };
      const seen = ringNow.members.find((m) => m.id === 'n2');
      return seen?.peerUrl === `http://127.0.0.1:${n2.peerPort}` && seen.up ? true : undefined;
    });

    // The claimant (n1, the lowest id) comes back on a new address too: nobody can forward the
    // change to it at its old one, so it records its own address and gossip spreads it.
    await n1.stop();
    n1 = await NodeProcess.start({ nodeId: 'n1', dataDir: join(dir, 'n1'), args: ARGS, waitFor: 'healthy' });
    await waitFor('n2 to know the claimant n1 at its new address', 15_000, async () => {
      const ringNow = JSON.parse((await http(n2.url, 'GET', '/v1/ring')).body) as { members: { id: string; peerUrl: string; up: boolean }[] };
      const seen = ringNow.members.find((m) => m.id === 'n1');
      return seen?.peerUrl === `http://127.0.0.1:${n1.peerPort}` && seen.up ? true : undefined;
    });
    expect(await readiness(n1)).toEqual({ status: 200 });
  }, 90_000);
});
