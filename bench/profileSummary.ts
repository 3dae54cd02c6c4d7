/**
 * Prints the functions with the most self time in a V8 CPU profile:
 *
 *   node dist/bench/profileSummary.js <file.cpuprofile> [--top 10]
 *
 * Profiles come from `node --cpu-prof`, e.g. `npm run bench:cluster -- --cpu-prof-node n1`.
 */
import { parseArgs } from 'node:util';
import { formatProfileSummary, summarizeProfileFile } from './lib/cpuProfile';

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '10' } }, allowPositionals: true });
const topCount = Number(values.top);
const file = positionals[0];
if (file === undefined || !Number.isInteger(topCount) || topCount < 1) {
  process.stderr.write('Usage: node dist/bench/profileSummary.js <file.cpuprofile> [--top <n>]\n');
  process.exit(2);
}
process.stdout.write(`${formatProfileSummary(summarizeProfileFile(file, topCount))}\n`);
