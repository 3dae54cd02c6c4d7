/**
 * The HTTP fuzzer's command line (run from the build: `npm run fuzz:soak`, or
 * `node dist/test/fuzz/run.js --requests N --seed S`).
 *
 *   --requests N      requests to send (default 100000)
 *   --seed S          seed of the campaign (default: from the clock, printed)
 *   --concurrency C   requests in flight at once (default 16)
 *
 * Starts its own node process, prints the campaign's figures (requests, answers by status and
 * code, rate) and every failure with its request. Exit status: 0 when nothing failed, 1 when
 * something did, 2 on bad arguments.
 */
import { runCampaign } from './campaign';
import { FUZZ_LIMITS, startFuzzTarget } from './target';

interface Arguments {
  requests: number;
  seed: number;
  concurrency: number;
}

function parseArguments(argv: readonly string[]): Arguments {
  const args: Arguments = { requests: 100_000, seed: Date.now() % 1_000_000_007, concurrency: 16 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const text = argv[++i];
    const value = Number(text);
    if (text === undefined || !Number.isSafeInteger(value) || value < 1) throw new Error(`${flag} needs a positive integer`);
    if (flag === '--requests') args.requests = value;
    else if (flag === '--seed') args.seed = value;
    else if (flag === '--concurrency') args.concurrency = value;
    else throw new Error(`unknown argument ${flag}`);
  }
  return args;
}

async function main(): Promise<number> {
  let args: Arguments;
  try {
    args = parseArguments(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\nusage: run.js [--requests N] [--seed S] [--concurrency C]\n`);
    return 2;
  }
  process.stdout.write(`fuzzing a node with ${args.requests} requests, seed ${args.seed}, concurrency ${args.concurrency}\n`);
  const target = await startFuzzTarget();
  try {
    const result = await runCampaign({
      url: target.node.url,
      seed: args.seed,
      requests: args.requests,
      concurrency: args.concurrency,
      limits: FUZZ_LIMITS,
      closedPort: target.closedPort,
      progressEvery: 10_000,
      onProgress: (done) => process.stdout.write(`  ${done} requests\n`),
    });
    const seconds = result.durationMs / 1000;
    process.stdout.write(`requests: ${result.requests} in ${seconds.toFixed(1)} s (${Math.round(result.requests / seconds)}/s), not sent by the client library: ${result.notSent}\n`);
    process.stdout.write(`node alive: ${target.node.alive}\nanswers:\n`);
    for (const [label, count] of Object.entries(result.byOutcome).sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${String(count).padStart(8)}  ${label}\n`);
    for (const failure of result.failures) process.stdout.write(`FAILED #${failure.index}: ${failure.problems.join('; ')}\n  ${failure.request}\n`);
    for (const problem of result.sentinelProblems) process.stdout.write(`SENTINEL: ${problem}\n`);
    const ok = result.failures.length === 0 && result.sentinelProblems.length === 0 && target.node.alive;
    process.stdout.write(ok ? 'PASS\n' : `FAIL (replay with --seed ${args.seed})\n`);
    return ok ? 0 : 1;
  } finally {
    await target.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`fuzz: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
