/**
 * The committed CRD files are exactly what the schema source generates: a change to
 * operator/src/core/crd.ts without `node dist/operator/src/generateCrd.js` fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRD_FILES, crdYaml, repositoryRoot } from './generateCrd';

test.each(CRD_FILES)('%s matches the schema source', (file) => {
  expect(readFileSync(join(repositoryRoot(), file), 'utf8')).toBe(crdYaml());
});
