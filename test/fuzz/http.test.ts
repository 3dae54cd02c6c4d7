/**
 * The HTTP fuzzer's CI batch: a few thousand generated requests (see requests.ts) against a real
 * node process, every answer checked by the oracle (no 5xx but 503, catalogue error bodies under
 * their catalogue status, Retry-After on 503, statuses the OpenAPI document lists), the node alive
 * throughout, and sentinel keys the fuzzer never named unchanged at the end.
 *
 * The seed is fixed so CI is repeatable; DYNAMOKV_FUZZ_SEED picks another, and `npm run
 * fuzz:soak` runs a long campaign with fresh seeds.
 */
import { runCampaign } from './campaign';
import { FUZZ_LIMITS, startFuzzTarget, type FuzzTarget } from './target';

const SEED = Number(process.env.DYNAMOKV_FUZZ_SEED ?? '20261125');
const REQUESTS = 4000;

let target: FuzzTarget;
beforeAll(async () => {
  target = await startFuzzTarget();
});
afterAll(async () => {
  await target?.stop();
});

test(`${REQUESTS} fuzzed requests (seed ${SEED}): no crash, no undocumented answer, unrelated keys unchanged`, async () => {
  const result = await runCampaign({ url: target.node.url, seed: SEED, requests: REQUESTS, concurrency: 8, limits: FUZZ_LIMITS, closedPort: target.closedPort });
  expect(result.failures).toEqual([]);
  expect(result.sentinelProblems).toEqual([]);
  expect(target.node.alive).toBe(true);
  // The batch reached the deep paths, not only the refusals.
  const answered = (prefix: string) => Object.entries(result.byOutcome).filter(([label]) => label.startsWith(prefix)).reduce((sum, [, n]) => sum + n, 0);
  expect(answered('2')).toBeGreaterThan(REQUESTS / 20);
  expect(answered('400')).toBeGreaterThan(REQUESTS / 20);
  expect(result.byOutcome['400 CONTEXT_INVALID'] ?? 0).toBeGreaterThan(0);
  expect(result.byOutcome['413 VALUE_TOO_LARGE'] ?? 0).toBeGreaterThan(0);
  expect(answered('raw')).toBeGreaterThan(0);
  expect(result.requests).toBe(REQUESTS);
});
