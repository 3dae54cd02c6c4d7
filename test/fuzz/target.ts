/**
 * The node the HTTP fuzzer runs against: a real process (the compiled build) on a temporary
 * RocksDB directory, with small limits so that the size boundaries are hit often.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeProcess, ensureBuilt, freePort } from '../support/nodeProcess';
import type { GeneratorContext } from './requests';

export const FUZZ_LIMITS: GeneratorContext['limits'] = { maxBucketBytes: 32, maxKeyBytes: 64, maxValueBytes: 4096 };

export interface FuzzTarget {
  readonly node: NodeProcess;
  /** A port nothing listens on, for join seeds. */
  readonly closedPort: number;
  stop(): Promise<void>;
}

export async function startFuzzTarget(): Promise<FuzzTarget> {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'dynamokv-fuzz-'));
  const node = await NodeProcess.start({
    nodeId: 'fuzz-node',
    dataDir: join(dir, 'data'),
    args: [
      '--max-bucket-bytes', String(FUZZ_LIMITS.maxBucketBytes),
      '--max-key-bytes', String(FUZZ_LIMITS.maxKeyBytes),
      '--max-value-bytes', String(FUZZ_LIMITS.maxValueBytes),
      '--max-siblings', '20',
    ],
  });
  const closedPort = await freePort();
  return {
    node,
    closedPort,
    stop: async () => {
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
