/**
 * Shedding on queueing delay, once on a real node process: while as many clients as its in-flight
 * bound keep it busy, the node is stopped (SIGSTOP) for longer than target + interval, a stall no
 * request can be served through. When it runs again it is overloaded, lowers its in-flight limit
 * below what the clients hold, and refuses key requests above it with 503 OVERLOADED and
 * Retry-After before doing any work; it counts them, keeps answering /healthz and /metrics, stores
 * nothing a refused PUT carried, and serves normally once the delay is gone. The stall is repeated
 * (a bounded number of times) until a refusal is seen, so the test does not depend on how fast the
 * machine is. Without shedding (target 0) no refusal on queueing delay ever comes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { NodeProcess, ensureBuilt, killAllNodes } from '../support/nodeProcess';

const BUCKET_PATH = '/v1/buckets/load/keys/';
const CLIENTS = 16;
const STALLS_MAX = 20;
const STALL_MS = 300;

let dir: string;
let node: NodeProcess;
const agent = new Agent({ connections: CLIENTS * 2, pipelining: 1 });

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'dynamokv-overload-'));
  // Target 5 ms, interval 50 ms: a 300 ms stall is a standing queue by itself. The in-flight bound
  // equals the clients (each holds one request at a time), so one cut of the limit refuses some;
  // a refusal on queueing delay is told apart from one at the bound by its message.
  node = await NodeProcess.start({
    nodeId: 'o1',
    dataDir: join(dir, 'o1'),
    args: ['--queue-delay-target-ms', '5', '--queue-delay-interval-ms', '50', '--max-in-flight-requests', String(CLIENTS)],
  });
});
afterAll(async () => {
  await agent.close();
  await killAllNodes();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  code: string | undefined;
  message: string;
  retryAfter: string | undefined;
}

async function call(method: string, path: string, body?: string, context?: string): Promise<Answer & { body: string; context: string | undefined }> {
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'text/plain' };
  if (context !== undefined) headers['x-dynamo-context'] = context;
  const response = await request(`${node.url}${path}`, { method, body, dispatcher: agent, headers });
  const text = await response.body.text();
  const error = response.headers['content-type']?.toString().startsWith('application/json') === true ? (JSON.parse(text) as { error?: { code?: string; message?: string } }).error : undefined;
  const retryAfter = response.headers['retry-after'];
  const newContext = response.headers['x-dynamo-context'];
  return { status: response.statusCode, code: error?.code, message: error?.message ?? '', retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, body: text, context: Array.isArray(newContext) ? newContext[0] : newContext };
}

test('a node whose requests wait past the target refuses new key requests before any work, and recovers', async () => {
  const refusedPuts: string[] = [];
  const refusals: Answer[] = [];
  let sequence = 0;
  let delayRefusals = 0;
  let stop = false;
  // Each client overwrites its own key with unique values until told to stop (with the context of
  // its last write, so the key keeps one value); a refused value is noted.
  const client = async (index: number): Promise<void> => {
    let context: string | undefined;
    while (!stop) {
      const value = `v${index}-${sequence++}`;
      const answer = await call('PUT', `${BUCKET_PATH}k${index}`, value, context);
      if (answer.status === 503) {
        if (answer.message.includes('wait longer than it accepts')) delayRefusals++;
        refusals.push(answer);
        refusedPuts.push(value);
      } else {
        expect(answer.status).toBe(204);
        context = answer.context;
      }
    }
  };
  const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
  try {
    for (let stall = 0; stall < STALLS_MAX && delayRefusals === 0; stall++) {
      process.kill(node.pid, 'SIGSTOP');
      await sleep(STALL_MS);
      process.kill(node.pid, 'SIGCONT');
      await sleep(STALL_MS);
    }
  } finally {
    stop = true;
    await Promise.all(clients);
  }

  expect(delayRefusals).toBeGreaterThan(0);
  expect(refusals.every((r) => r.code === 'OVERLOADED' && r.retryAfter === '1')).toBe(true);
  const metrics = await call('GET', '/metrics');
  expect(metrics.status).toBe(200);
  const shedCount = (reason: string): number => Number(new RegExp(`^dynamokv_requests_shed_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(metrics.body)?.[1] ?? 'NaN');
  expect(shedCount('delay')).toBeGreaterThan(0);
  expect(shedCount('delay') + shedCount('full')).toBeGreaterThanOrEqual(refusals.length);
  expect((await call('GET', '/healthz')).status).toBe(200);

  // Once idle the node serves again (bounded wait for the delay samples to fall under the target),
  // and no refused value was stored: each key holds only values whose PUT was answered 204.
  let answer = await call('GET', `${BUCKET_PATH}k0`);
  for (let attempt = 0; attempt < 50 && answer.status === 503; attempt++) {
    await sleep(20);
    answer = await call('GET', `${BUCKET_PATH}k0`);
  }
  expect([200, 300]).toContain(answer.status);
  for (let index = 0; index < CLIENTS; index++) {
    const stored = await call('GET', `${BUCKET_PATH}k${index}`);
    const values = stored.status === 300 ? (JSON.parse(stored.body) as { siblings: { value: string }[] }).siblings.map((s) => Buffer.from(s.value, 'base64').toString()) : [stored.body];
    for (const value of values) expect(refusedPuts).not.toContain(value);
  }
});
