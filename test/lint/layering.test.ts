/**
 * Proves that the ESLint purity wall around node/src/core really fails the build: each snippet
 * below breaks one rule of the core (I/O, clock, randomness, timers, upper layers), and is linted
 * with the repository's own eslint.config.js as if it were a file in node/src/core. A clean snippet
 * must pass, and the same offending code outside the core must not be reported, so the rule is
 * neither dead nor over-broad.
 */
import path from 'node:path';
import { ESLint } from 'eslint';

const repoRoot = path.resolve(__dirname, '..', '..');

// The config is handed over as an object rather than discovered on disk: ESLint loads config
// files with a dynamic import(), which Jest's module sandbox only allows with extra Node flags.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const repoConfig = require(path.join(repoRoot, 'eslint.config.js')) as ESLint.Options['overrideConfig'];

const eslint = new ESLint({ cwd: repoRoot, overrideConfigFile: true, overrideConfig: repoConfig });

async function errorsFor(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  if (result === undefined) throw new Error('ESLint returned no result');
  return result.messages.filter((m) => m.severity === 2).map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`);
}

const CORE_FILE = 'node/src/core/x.ts';

const offending: Array<[string, string, string]> = [
  ['a node: builtin import', "import { readFileSync } from 'node:fs';\nexport const f = readFileSync;\n", 'no-restricted-imports'],
  ['a bare builtin import', "import * as crypto from 'crypto';\nexport const h = crypto.createHash;\n", 'no-restricted-imports'],
  ['a builtin subpath import', "import { readFile } from 'fs/promises';\nexport const r = readFile;\n", 'no-restricted-imports'],
  ['an import from storage', "import type { StorageEngine } from '../storage/engine';\nexport type E = StorageEngine;\n", 'no-restricted-imports'],
  ['an import from transport', "import { PeerCallError } from '../transport/peerClient';\nexport const e = PeerCallError;\n", 'no-restricted-imports'],
  ['an import from api', "import { DynamoError } from '../api/errors';\nexport const e = DynamoError;\n", 'no-restricted-imports'],
  ['an import from server', "import { start } from '../server';\nexport const s = start;\n", 'no-restricted-imports'],
  ['an import from the cluster wiring', "import { startCluster } from '../clusterWiring';\nexport const s = startCluster;\n", 'no-restricted-imports'],
  ['an import from the cluster layer', "import { Coordinator } from '../cluster/coordinator';\nexport const c = Coordinator;\n", 'no-restricted-imports'],
  ['an import from outside node/src', "import { DynamoClient } from '../../../client/src/client';\nexport const c = DynamoClient;\n", 'no-restricted-imports'],
  ['Date.now()', 'export const nowMs = (): number => Date.now();\n', 'no-restricted-properties'],
  ['new Date()', 'export const today = (): string => new Date().toISOString();\n', 'no-restricted-syntax'],
  ['Math.random()', 'export const coin = (): boolean => Math.random() < 0.5;\n', 'no-restricted-properties'],
  ['performance.now()', 'export const t = (): number => performance.now();\n', 'no-restricted-properties'],
  ['setTimeout', 'export const later = (f: () => void): void => { setTimeout(f, 10); };\n', 'no-restricted-globals'],
  ['setInterval', 'export const tick = (f: () => void): void => { setInterval(f, 10); };\n', 'no-restricted-globals'],
  ['setImmediate', 'export const soon = (f: () => void): void => { setImmediate(f); };\n', 'no-restricted-globals'],
  ['queueMicrotask', 'export const micro = (f: () => void): void => { queueMicrotask(f); };\n', 'no-restricted-globals'],
  ['process.env', "export const home = (): string | undefined => process.env['HOME'];\n", 'no-restricted-globals'],
  ['require()', "// eslint-disable-next-line @typescript-eslint/no-require-imports\nexport const fs: unknown = require('fs');\n", 'no-restricted-syntax'],
  ['dynamic import()', "export const load = (): Promise<unknown> => import('node:fs');\n", 'no-restricted-syntax'],
  ['import = require()', "import fs = require('fs');\nexport const x = fs;\n", 'no-restricted-imports'],
];

describe('ESLint purity rules for node/src/core', () => {
  test.each(offending)('reports %s', async (_name, code, ruleFragment) => {
    const errors = await errorsFor(code, CORE_FILE);
    expect(errors.some((e) => e.includes(ruleFragment))).toBe(true);
  });

  test('accepts a pure module that takes time and randomness as arguments', async () => {
    const clean = [
      "import type { NodeId } from './version';",
      'export function stamp(node: NodeId, nowMs: number, random: () => number): string {',
      '  const jitterMs = Math.floor(random() * 10);',
      '  return `${node}@${new Date(nowMs + jitterMs).toISOString()}`;',
      '}',
      '',
    ].join('\n');
    expect(await errorsFor(clean, CORE_FILE)).toEqual([]);
  });

  test('does not apply the core rules outside node/src/core', async () => {
    const code = "import { readFileSync } from 'node:fs';\nexport const read = (): string => readFileSync('x', 'utf8') + Date.now();\n";
    expect(await errorsFor(code, 'node/src/storage/x.ts')).toEqual([]);
  });
});

describe('ESLint general rules', () => {
  test('reports unused variables but allows an underscore prefix', async () => {
    const errors = await errorsFor('export function f(a: number, _b: number): number { const unused = 1; return a; }\n', 'node/src/api/x.ts');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('no-unused-vars');
  });

  test('reports explicit any outside tests and allows it in tests', async () => {
    const code = 'export const f = (x: any): number => x;\n';
    expect((await errorsFor(code, 'node/src/api/x.ts')).some((e) => e.includes('no-explicit-any'))).toBe(true);
    expect(await errorsFor(code, 'node/src/api/x.test.ts')).toEqual([]);
  });

  test('reports loose equality', async () => {
    const errors = await errorsFor('export const same = (a: number, b: number): boolean => a == b;\n', 'client/src/x.ts');
    expect(errors.some((e) => e.includes('eqeqeq'))).toBe(true);
  });
});
