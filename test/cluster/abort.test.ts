/**
 * A membership change that cannot finish, handled with the compiled CLI on real processes: a
 * joining node is killed with -9 in the middle of its transfers and never comes back.
 * - `dynamokv join` of another node, started meanwhile, waits (retrying, with a progress line)
 *   instead of failing, because one change runs at a time;
 * - `dynamokv ring` shows the pending change;
 * - `dynamokv abort`, sent to a node that is not the claimant, drops it;
 * - the waiting join then goes through and completes, and afterwards every acknowledged write
 *   reads back, every key is held by exactly its owners and no backlog is left.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { LocalCluster, http, putText, waitFor } from '../support/cluster';
import { waitSettled } from '../support/handoffWorkload';
import { CLI_MAIN, NODE_BINARY, killAllNodes } from '../support/nodeProcess';

const BUCKET = 'abort';
const Q = 16;
const PRELOAD_KEYS = 300;
const VALUE_PAD = 'x'.repeat(1000);

const cli = (args: readonly string[]) => promisify(execFile)(NODE_BINARY, [CLI_MAIN, ...args], { timeout: 30_000, env: { ...process.env, DYNAMOKV_ENDPOINTS: '' } });

describe('aborting a stuck join with the CLI', () => {
  let cluster: LocalCluster | undefined;
  let join5: ChildProcess | undefined;

  beforeAll(async () => {
    // 16 KiB/s per sender: a join of 300 keys of 1 KiB streams for several seconds.
    cluster = await LocalCluster.start({ nodes: 5, joined: 3, partitions: Q, extraArgs: ['--handoff-bytes-per-second-max', '16384'] });
  }, 60_000);

  afterAll(async () => {
    if (join5?.exitCode === null) join5.kill('SIGKILL');
    await cluster?.destroy();
    await killAllNodes();
  });

  test('a join waits for the change in progress; abort drops the change of a dead joiner; the waiting join then completes with nothing lost', async () => {
    const c = cluster!;
    const acked = new Map<string, string>();
    for (let i = 0; i < PRELOAD_KEYS; i++) {
      expect((await putText(c.nodes[i % 3]!.url, BUCKET, `k-${i}`, `${VALUE_PAD}${i}`)).status).toBe(204);
      acked.set(`k-${i}`, `${VALUE_PAD}${i}`);
    }
    const seed = c.node('n1').peerUrl.replace('http://', '');
    const join4 = await http(c.node('n4').url, 'POST', '/v1/admin/join', { body: JSON.stringify({ seed }), headers: { 'content-type': 'application/json' } });
    expect(join4.status).toBe(200);

    // The second join is refused while the first streams; the CLI keeps retrying.
    const child = spawn(NODE_BINARY, [CLI_MAIN, 'join', c.node('n5').url, '--seed', seed, '--timeout-s', '120'], { stdio: ['ignore', 'pipe', 'pipe'] });
    join5 = child;
    let join5Out = '';
    let join5Err = '';
    child.stdout.on('data', (chunk: Buffer) => (join5Out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (join5Err += chunk.toString('utf8')));
    const join5Exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));

    await waitFor('n4 to be receiving', 30_000, async () => {
      const view = JSON.parse((await http(c.node('n4').url, 'GET', '/v1/handoff')).body) as { transfers: { role?: string; keysDone?: number }[] };
      return view.transfers.some((t) => t.role === 'receiving' && (t.keysDone ?? 0) > 0) ? true : undefined;
    });
    await c.kill('n4');
    await waitFor('the members to see n4 down', 10_000, async () => {
      for (const id of ['n1', 'n2', 'n3']) if ((await c.ring(id)).members.find((m) => m.id === 'n4')?.up !== false) return undefined;
      return true;
    });
    await waitFor('the CLI join to report that it waits', 30_000, async () => (join5Err.includes('join: waiting for the membership change in progress') ? true : undefined));

    const ring = await cli(['ring', '-e', c.node('n1').url]);
    expect(ring.stdout).toMatch(/pending change: joining n4; \d+ of \d+ transfers done/);
    const aborted = await cli(['abort', '-e', c.node('n2').url]);
    expect(aborted.stdout).toMatch(/^aborted the join of n4 \(\d+ of \d+ transfers had finished\)/);
    expect((await c.ring('n1')).members.find((m) => m.id === 'n4')?.state).toBe('left');

    expect(await join5Exit).toBe(0);
    expect(join5Out).toMatch(/asked to join the cluster/);
    const live = ['n1', 'n2', 'n3', 'n5'];
    await waitSettled(c, live, { acked, unacked: new Map() }, { bucket: BUCKET, partitions: Q });
    expect((await c.ring('n2')).members.find((m) => m.id === 'n5')?.state).toBe('normal');
    expect((await cli(['ring', '-e', c.node('n5').url])).stdout).toMatch(/no membership change pending/);
    expect((await cli(['abort', '-e', c.node('n3').url])).stdout).toBe('no membership change was pending; nothing changed\n');
  }, 150_000);
});
