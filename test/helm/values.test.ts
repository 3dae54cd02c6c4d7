/**
 * The chart's values are documented and typed everywhere they should be: every key of values.yaml
 * (read by helm itself) appears in the chart README's values table and in values.schema.json, and
 * the schema declares no key that values.yaml lacks. Keys are walked down to the leaves, except
 * inside free-form Kubernetes objects (resources, securityContext, ...), which the schema leaves
 * open and the README documents as a whole.
 */
import { join } from 'node:path';

import { CHART_DIR, chartFile, helmBinary, yamlMapToJson } from './helm';

interface SchemaNode {
  readonly type?: string | string[];
  readonly properties?: Record<string, SchemaNode>;
  readonly $ref?: string;
  readonly additionalProperties?: boolean | SchemaNode;
}

const schema = JSON.parse(chartFile('values.schema.json')) as SchemaNode & { definitions: Record<string, SchemaNode> };

function resolve(node: SchemaNode): SchemaNode {
  if (node.$ref === undefined) return node;
  const name = node.$ref.replace('#/definitions/', '');
  const target = schema.definitions[name];
  if (target === undefined) throw new Error(`values.schema.json: unresolved ${node.$ref}`);
  return resolve(target);
}

/** Dotted paths of values.yaml, descending only where the schema names the properties. */
function valuePaths(values: unknown, node: SchemaNode, prefix: string, missing: string[]): string[] {
  const paths: string[] = [];
  if (values === null || typeof values !== 'object' || Array.isArray(values)) return paths;
  for (const [key, value] of Object.entries(values as Record<string, unknown>)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const child = node.properties?.[key];
    if (child === undefined) {
      missing.push(path);
      continue;
    }
    const resolved = resolve(child);
    const isMap = value !== null && typeof value === 'object' && !Array.isArray(value);
    if (isMap && resolved.properties !== undefined && resolved.additionalProperties === false) {
      paths.push(...valuePaths(value, resolved, path, missing));
    } else {
      paths.push(path);
    }
  }
  return paths;
}

/** Dotted paths of every property the schema declares (down to where values.yaml stops). */
function schemaPaths(node: SchemaNode, prefix: string): string[] {
  const resolved = resolve(node);
  if (resolved.properties === undefined || resolved.additionalProperties !== false) return prefix === '' ? [] : [prefix];
  return Object.entries(resolved.properties).flatMap(([key, child]) => schemaPaths(child, prefix === '' ? key : `${prefix}.${key}`));
}

let values: unknown;
let paths: string[];
const notInSchema: string[] = [];

beforeAll(async () => {
  helmBinary();
  values = await yamlMapToJson(join(CHART_DIR, 'values.yaml'));
  paths = valuePaths(values, schema, '', notInSchema);
}, 15 * 60_000);

test('values.yaml has a few dozen documented keys (the walk found them)', () => {
  expect(paths.length).toBeGreaterThan(40);
  expect(paths).toContain('monitoring.grafanaDashboards.sidecarLabel');
  expect(paths).toContain('resources');
});

test('every key of values.yaml is declared in values.schema.json', () => {
  expect(notInSchema).toEqual([]);
});

test('values.schema.json declares no key that values.yaml lacks (global aside)', () => {
  const declared = schemaPaths(schema, '').filter((path) => path !== 'global');
  expect(declared.filter((path) => !paths.includes(path))).toEqual([]);
});

test('every key of values.yaml is documented in the chart README values table', () => {
  const readme = chartFile('README.md');
  const table = readme.slice(readme.indexOf('## Values'));
  const documented = new Set([...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
  expect(paths.filter((path) => !documented.has(path))).toEqual([]);
  // ... and the table documents nothing that does not exist.
  expect([...documented].filter((path) => path !== undefined && !paths.includes(path))).toEqual([]);
});
