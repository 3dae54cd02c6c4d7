/**
 * Proves that the dependency-cruiser half of the layering check fails on real violations: it
 * builds a throw-away tree shaped like this repository in a temp dir, with one offending import
 * per rule, runs the real depcruise binary with the repository's .dependency-cruiser.cjs, and
 * expects every rule to be reported; the same tree without the offending files must pass.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const repoRoot = path.resolve(__dirname, '..', '..');
const depcruiseBin = path.join(repoRoot, 'node_modules', '.bin', 'depcruise');

interface Run {
  exitCode: number;
  output: string;
}

function writeTree(root: string, files: Record<string, string>): void {
  for (const [relative, text] of Object.entries(files)) {
    const file = path.join(root, relative);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
}

function cruise(root: string): Run {
  const args = ['--config', path.join(repoRoot, '.dependency-cruiser.cjs'), '--output-type', 'err', 'node/src', 'client/src', 'cli/src'];
  try {
    const output = execFileSync(depcruiseBin, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { exitCode: 0, output };
  } catch (error) {
    const failed = error as { status?: number; stdout?: string; stderr?: string };
    return { exitCode: failed.status ?? -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

// A legal miniature of the layers: each file imports only downwards.
const cleanTree: Record<string, string> = {
  'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'commonjs', moduleResolution: 'node10', strict: true } }),
  'node/src/core/version.ts': 'export type NodeId = string;\n',
  'node/src/core/dvv.ts': "import type { NodeId } from './version';\nexport const me: NodeId = 'a';\n",
  'node/src/storage/engine.ts': "import { me } from '../core/dvv';\nexport const engine = me;\n",
  'node/src/transport/peer.ts': "import { engine } from '../storage/engine';\nexport const peer = engine;\n",
  'node/src/cluster/coordinator.ts': "import { peer } from '../transport/peer';\nexport const coordinator = peer;\n",
  'node/src/log.ts': 'export const log = (): void => undefined;\n',
  'node/src/api/routes.ts': "import { coordinator } from '../cluster/coordinator';\nimport { log } from '../log';\nexport const routes = [coordinator, log];\n",
  'node/src/clusterWiring.ts': "import { coordinator } from './cluster/coordinator';\nexport const wiring = coordinator;\n",
  'node/src/server.ts': "import { routes } from './api/routes';\nimport { wiring } from './clusterWiring';\nimport { createServer } from 'node:http';\nexport const server = [routes, wiring, createServer];\n",
  'client/src/client.ts': 'export const client = 1;\n',
  'cli/src/main.ts': "import { client } from '../../client/src/client';\nexport const main = client;\n",
};

const violations: Array<[string, string, string]> = [
  ['core-is-self-contained', 'node/src/core/up.ts', "import { engine } from '../storage/engine';\nexport const up = engine;\n"],
  ['core-no-node-builtins', 'node/src/core/io.ts', "import { readFileSync } from 'node:fs';\nexport const io = readFileSync;\n"],
  ['storage-below-transport', 'node/src/storage/up.ts', "import { peer } from '../transport/peer';\nexport const up = peer;\n"],
  ['transport-below-cluster', 'node/src/transport/up.ts', "import { routes } from '../api/routes';\nexport const up = routes;\n"],
  ['cluster-below-api', 'node/src/cluster/up.ts', "import { routes } from '../api/routes';\nexport const up = routes;\n"],
  ['cluster-below-api', 'node/src/cluster/wired.ts', "import { wiring } from '../clusterWiring';\nexport const up = wiring;\n"],
  ['api-below-server', 'node/src/api/up.ts', "import { server } from '../server';\nexport const up = server;\n"],
  ['api-below-server', 'node/src/api/wired.ts', "import { wiring } from '../clusterWiring';\nexport const up = wiring;\n"],
  ['node-not-to-client-or-cli', 'node/src/api/client.ts', "import { client } from '../../../client/src/client';\nexport const c = client;\n"],
  ['client-not-to-node-or-cli', 'client/src/core.ts', "import { me } from '../../node/src/core/dvv';\nexport const c = me;\n"],
  ['cli-not-to-node', 'cli/src/core.ts', "import { me } from '../../node/src/core/dvv';\nexport const c = me;\n"],
  ['no-circular', 'node/src/api/cycleA.ts', "import { b } from './cycleB';\nexport const a = () => b;\n"],
  ['no-unresolvable', 'node/src/api/missing.ts', "import { gone } from './doesNotExist';\nexport const m = gone;\n"],
];

describe('dependency-cruiser layering rules', () => {
  let root = '';

  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'dynamokv-depcruise-'));
  });

  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  test('a tree whose imports all point down passes', () => {
    writeTree(root, cleanTree);
    const run = cruise(root);
    expect(run.output).not.toContain('error');
    expect(run.exitCode).toBe(0);
  });

  test('every rule reports its violation and the run fails', () => {
    const offending: Record<string, string> = { ...cleanTree, 'node/src/api/cycleB.ts': "import { a } from './cycleA';\nexport const b = () => a;\n" };
    for (const [, file, text] of violations) offending[file] = text;
    writeTree(root, offending);
    const run = cruise(root);
    expect(run.exitCode).toBeGreaterThan(0);
    for (const [rule, file] of violations) expect(run.output).toContain(`error ${rule}: ${file}`);
  });
});
