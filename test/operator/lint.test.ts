/**
 * Proves the operator's lint walls fail the build: the ESLint purity rules of operator/src/core
 * (each offending snippet is linted as a core file with the repository's eslint.config.js, and the
 * same code outside the core passes), and the dependency-cruiser rules (a throw-away tree with one
 * offending import per rule is cruised with the repository's .dependency-cruiser.cjs).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ESLint } from 'eslint';

const repoRoot = path.resolve(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const repoConfig = require(path.join(repoRoot, 'eslint.config.js')) as ESLint.Options['overrideConfig'];
const eslint = new ESLint({ cwd: repoRoot, overrideConfigFile: true, overrideConfig: repoConfig });

async function errorsFor(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  if (result === undefined) throw new Error('ESLint returned no result');
  return result.messages.filter((m) => m.severity === 2).map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`);
}

const offending: Array<[string, string, string]> = [
  ['a node: builtin', "import { readFileSync } from 'node:fs';\nexport const f = readFileSync;\n", 'no-restricted-imports'],
  ['the Kubernetes client', "import type { KubeConfig } from '@kubernetes/client-node';\nexport type K = KubeConfig;\n", 'no-restricted-imports'],
  ['an adapter', "import { KubeClient } from '../kube/client';\nexport const k = KubeClient;\n", 'no-restricted-imports'],
  ['Date.now()', 'export const nowMs = (): number => Date.now();\n', 'no-restricted-properties'],
  ['new Date()', 'export const today = (): string => new Date().toISOString();\n', 'no-restricted-syntax'],
  ['Math.random()', 'export const coin = (): boolean => Math.random() < 0.5;\n', 'no-restricted-properties'],
  ['setTimeout', 'export const later = (f: () => void): void => { setTimeout(f, 10); };\n', 'no-restricted-globals'],
  ['process.env', "export const home = (): string | undefined => process.env['HOME'];\n", 'no-restricted-globals'],
  ['dynamic import()', "export const load = (): Promise<unknown> => import('node:fs');\n", 'no-restricted-syntax'],
];

describe('ESLint purity rules for operator/src/core', () => {
  test.each(offending)('reports %s', async (_name, code, rule) => {
    expect((await errorsFor(code, 'operator/src/core/x.ts')).some((e) => e.includes(rule))).toBe(true);
  });

  test('the same code is allowed in the adapters, and a pure module passes in the core', async () => {
    expect(await errorsFor('export const nowMs = (): number => Date.now();\n', 'operator/src/controller/x.ts')).toEqual([]);
    expect(await errorsFor("import { names } from './names';\nexport const at = (nowMs: number): string => `${names.pod('kv', 0)}@${new Date(nowMs).toISOString()}`;\n", 'operator/src/core/x.ts')).toEqual([]);
  });
});

describe('dependency-cruiser rules for the operator', () => {
  const depcruise = path.join(repoRoot, 'node_modules', '.bin', 'depcruise');
  const clean: Record<string, string> = {
    'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'commonjs', moduleResolution: 'node10', strict: true } }),
    'operator/src/core/names.ts': 'export const names = 1;\n',
    'operator/src/kube/client.ts': "import { names } from '../core/names';\nexport const client = names;\n",
    'operator/src/controller/reconciler.ts': "import { client } from '../kube/client';\nexport const reconciler = client;\n",
    'node/src/core/ring.ts': 'export const ring = 1;\n',
  };
  const violations: Array<[string, string, string]> = [
    ['operator-core-is-self-contained', 'operator/src/core/up.ts', "import { client } from '../kube/client';\nexport const up = client;\n"],
    ['operator-core-no-node-builtins', 'operator/src/core/io.ts', "import { readFileSync } from 'node:fs';\nexport const io = readFileSync;\n"],
    ['operator-talks-http-to-nodes', 'operator/src/controller/node.ts', "import { ring } from '../../../node/src/core/ring';\nexport const r = ring;\n"],
    ['nothing-imports-the-operator', 'node/src/core/op.ts', "import { names } from '../../../operator/src/core/names';\nexport const n = names;\n"],
  ];

  function cruise(files: Record<string, string>): { code: number; output: string } {
    const root = mkdtempSync(path.join(tmpdir(), 'dkv-operator-cruise-'));
    try {
      for (const [relative, text] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
        writeFileSync(path.join(root, relative), text);
      }
      const args = ['--config', path.join(repoRoot, '.dependency-cruiser.cjs'), '--output-type', 'err', 'operator/src', 'node/src'];
      try {
        return { code: 0, output: execFileSync(depcruise, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
      } catch (error) {
        const failed = error as { status?: number; stdout?: string; stderr?: string };
        return { code: failed.status ?? -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }

  test('a tree that respects the layers passes', () => {
    expect(cruise(clean)).toMatchObject({ code: 0 });
  });

  test.each(violations)('%s fails the check', (rule, file, text) => {
    const run = cruise({ ...clean, [file]: text });
    expect(run.code).not.toBe(0);
    expect(run.output).toContain(rule);
  });
});
