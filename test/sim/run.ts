/**
 * The simulator's command line (run from the build: `npm run sim -- ...`).
 *
 *   --seed S            run one seed and print its result (the replay command of a failure)
 *   --seeds N --from S  a soak: seeds S .. S+N-1, stop at the first failure unless --keep-going
 *   --ops N             operations per run, at most (default 60; "--steps" is a synonym)
 *   --broken-merge      use the deliberately broken merge (shows what a violation looks like)
 *   --verbose           print every run's statistics
 *   --explain           print every message, client operation and fault of the run (with --seed)
 *
 * Exit status: 0 when every run passed, 1 when one failed, 2 on bad arguments.
 */
import { formatResult } from './report';
import { runSimulation, type SimParams } from './simulation';

interface Arguments {
  seed?: number;
  seeds: number;
  from: number;
  opsMax: number;
  brokenMerge: boolean;
  keepGoing: boolean;
  verbose: boolean;
  explain: boolean;
}

const USAGE = 'usage: run.js [--seed S | --seeds N --from S] [--ops N] [--broken-merge] [--keep-going] [--verbose] [--explain]';

function parseArguments(argv: readonly string[]): Arguments {
  const args: Arguments = { seeds: 1, from: 1, opsMax: 60, brokenMerge: false, keepGoing: false, verbose: false, explain: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const number = () => {
      const text = argv[++i];
      const value = Number(text);
      if (text === undefined || !Number.isSafeInteger(value) || value < 0) throw new Error(`${flag} needs a non-negative integer`);
      return value;
    };
    if (flag === '--seed') args.seed = number();
    else if (flag === '--seeds') args.seeds = number();
    else if (flag === '--from') args.from = number();
    else if (flag === '--ops' || flag === '--steps') args.opsMax = Math.max(1, number());
    else if (flag === '--broken-merge') args.brokenMerge = true;
    else if (flag === '--keep-going') args.keepGoing = true;
    else if (flag === '--verbose') args.verbose = true;
    else if (flag === '--explain') args.explain = true;
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
  const first = args.seed ?? args.from;
  const count = args.seed === undefined ? args.seeds : 1;
  const startedMs = Date.now();
  let failures = 0;
  let runs = 0;
  let acknowledged = 0;
  let operations = 0;
  for (let seed = first; seed < first + count; seed++) {
    const params: SimParams = { seed, opsMax: args.opsMax, brokenMerge: args.brokenMerge, ...(args.explain ? { log: (line: string) => console.log(line) } : {}) };
    const result = await runSimulation(params);
    runs++;
    acknowledged += result.stats.acknowledged;
    operations += result.stats.operations;
    const failed = result.violations.length > 0;
    if (failed || args.verbose || count === 1) console.log(formatResult(result));
    if (failed) {
      failures++;
      if (!args.keepGoing) break;
    }
  }
  const seconds = ((Date.now() - startedMs) / 1000).toFixed(1);
  console.log(`${runs} run(s) from seed ${first}: ${failures} failed; ${operations} operations, ${acknowledged} acknowledged writes; ${seconds} s`);
  return failures === 0 ? 0 : 1;
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
