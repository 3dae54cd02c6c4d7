/**
 * Writes the generated DynamoCluster CRD to crds/ and to the Helm chart's crds/ directory.
 * Run after changing operator/src/core/crd.ts: `npx tsc -p tsconfig.json && node dist/operator/src/generateCrd.js`
 * (`--check` exits 1, writing nothing, when a committed file differs from the schema source).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CRD_NAME, customResourceDefinition } from './core/crd';
import { toYaml } from './core/yaml';

const HEADER = '# Generated from operator/src/core/crd.ts by operator/src/generateCrd.ts. Do not edit by hand.\n';

export const CRD_FILES: readonly string[] = [`crds/${CRD_NAME}.yaml`, `charts/dynamokv-operator/crds/${CRD_NAME}.yaml`];

export function crdYaml(): string {
  return `${HEADER}${toYaml(customResourceDefinition())}`;
}

/** The repository root: this file lives in operator/src (sources) or dist/operator/src (build). */
export function repositoryRoot(): string {
  const here = resolve(__dirname);
  return here.includes(`${join('dist', 'operator')}`) ? resolve(here, '..', '..', '..') : resolve(here, '..', '..');
}

function main(argv: readonly string[]): number {
  const root = repositoryRoot();
  const expected = crdYaml();
  const check = argv.includes('--check');
  let stale = 0;
  for (const file of CRD_FILES) {
    const path = join(root, file);
    let existing: string | undefined;
    try {
      existing = readFileSync(path, 'utf8');
    } catch {
      existing = undefined;
    }
    if (existing === expected) continue;
    stale++;
    if (check) {
      process.stderr.write(`${file} differs from the schema source; run node dist/operator/src/generateCrd.js\n`);
    } else {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, expected);
      process.stdout.write(`wrote ${file}\n`);
    }
  }
  return check && stale > 0 ? 1 : 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
