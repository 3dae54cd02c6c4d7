/**
 * The command line of the real-process verify (run from the build, e.g.
 * `node dist/test/chaos/run.js --runs 20 --seed 1 --duration-s 15`).
 *
 *   --runs N        runs with seeds S .. S+N-1 (default 1)
 *   --seed S        first seed (default: drawn from the clock and printed)
 *   --duration-s D  seconds of workload per run (default 40)
 *   --keep-going    do not stop at the first failing run
 *
 * Each run starts and destroys its own cluster. Exit status: 0 when every run passed, 1 when one
 * failed, 2 on bad arguments. Ctrl-C SIGKILLs every node process this command started.
 */
import { killAllNodes } from '../support/nodeProcess';
import { formatVerify, verify } from './verify';

interface Arguments {
  runs: number;
  seed: number;
  durationS: number;
  keepGoing: boolean;
}

const USAGE = 'usage: run.js [--runs N] [--seed S] [--duration-s D] [--keep-going]';
const RUNS_MAX = 10_000;
const DURATION_S_MAX = 3600;

function parseArguments(argv: readonly string[]): Arguments {
  const args: Arguments = { runs: 1, seed: Date.now() % 1_000_000, durationS: 40, keepGoing: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const number = (low: number, high: number) => {
      const text = argv[++i];
      const value = Number(text);
      if (text === undefined || !Number.isSafeInteger(value) || value < low || value > high) throw new Error(`${flag} needs an integer in ${low}..${high}`);
      return value;
    };
    if (flag === '--runs') args.runs = number(1, RUNS_MAX);
    else if (flag === '--seed') args.seed = number(0, 2 ** 32 - 1);
    else if (flag === '--duration-s') args.durationS = number(1, DURATION_S_MAX);
    else if (flag === '--keep-going') args.keepGoing = true;
    else throw new Error(`unknown argument ${flag}`);
  }
  return args;
}

async function main(): Promise<number> {
  let args: Arguments;
  try {
    args = parseArguments(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const startedMs = Date.now();
  const totals = { runs: 0, failed: 0, operations: 0, acknowledged: 0, lost: 0, unexpected: 0, lwwAcknowledged: 0, lwwLost: 0 };
  for (let seed = args.seed; seed < args.seed + args.runs; seed++) {
    const result = await verify({ seed, durationMs: args.durationS * 1000, log: (line) => console.log(line) });
    totals.runs++;
    totals.operations += result.workload.operations;
    totals.acknowledged += result.siblings.acknowledged;
    totals.lost += result.siblings.lost;
    totals.unexpected += result.siblings.unexpected + result.lww.unexpected;
    totals.lwwAcknowledged += result.lww.acknowledged;
    totals.lwwLost += result.lww.lost;
    if (!result.ok) {
      totals.failed++;
      console.log(formatVerify(result));
      if (!args.keepGoing) break;
    }
  }
  const minutes = ((Date.now() - startedMs) / 60_000).toFixed(1);
  console.log(
    `verify: ${totals.runs} run(s) from seed ${args.seed}, ${args.durationS} s each: ${totals.failed} failed; ` +
      `${totals.operations} operations; siblings acknowledged ${totals.acknowledged} lost ${totals.lost}; unexpected ${totals.unexpected}; ` +
      `lww acknowledged ${totals.lwwAcknowledged} lost ${totals.lwwLost} (expected); ${minutes} min`,
  );
  return totals.failed === 0 ? 0 : 1;
}

// Node processes are children of this one; an interrupted soak must not leave them running.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`${signal}: killing every node process`);
    void killAllNodes().finally(() => process.exit(130));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
