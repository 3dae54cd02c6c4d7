/**
 * One short real-process verify run: 5 nodes (N=3), the set workload through every node for 15 s
 * while a seeded schedule pauses (SIGSTOP) and kills -9 nodes, then heal and the set checker.
 * It proves that no acknowledged add to a siblings bucket is lost under those faults, that the
 * run did acknowledge adds (so "nothing lost" is not vacuous), and that nothing appeared that no
 * client wrote. The lww bucket's losses are only reported.
 */
import { killAllNodes } from '../support/nodeProcess';
import { formatVerify, verify } from './verify';

const SEED = 20261125;
const WORKLOAD_MS = 15_000;

afterAll(async () => {
  await killAllNodes();
});

test('no acknowledged add is lost in a siblings bucket under pauses and kill -9', async () => {
  const result = await verify({ seed: SEED, durationMs: WORKLOAD_MS });
  // The whole report on failure: figures, violations and the replay command.
  const summary = formatVerify(result);
  expect({ lost: result.siblings.lost, violations: result.violations, summary }).toEqual({ lost: 0, violations: [], summary });
  expect(result.siblings.acknowledged).toBeGreaterThan(0);
  expect(result.siblings.unexpected + result.lww.unexpected).toBe(0);
  expect(result.faults.length).toBeGreaterThan(0);
}, 120_000);
