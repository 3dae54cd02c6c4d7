/**
 * The chart tests' access to a real helm binary (helm.sh/helm/v3, built once per machine from the
 * Go module proxy by build-helm.sh) and to the chart's files.
 *
 * YAML: the tests carry no YAML library of their own, and @kubernetes/client-node's loadAllYaml
 * turns objects into its model classes (renaming fields such as `from` to `_from`). So YAML goes
 * back to helm: the to-json fixture chart parses it with helm's own parser (the one Kubernetes
 * uses) and prints JSON, so a file is read exactly as helm and the API server read it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { REPO_ROOT } from '../support/nodeProcess';

export const CHART_DIR = join(REPO_ROOT, 'charts', 'dynamokv-operator');
const BUILD_SCRIPT = join(REPO_ROOT, 'test', 'helm', 'build-helm.sh');
const TO_JSON_CHART = join(REPO_ROOT, 'test', 'helm', 'fixtures', 'to-json');
/** The first build takes about a minute on 2 cores; later calls return at once. */
const BUILD_TIMEOUT_MS = 15 * 60_000;
const HELM_TIMEOUT_MS = 60_000;
const OUTPUT_BYTES_MAX = 32 * 1024 * 1024;

let helmPath: string | undefined;

/** The helm binary, built first if this machine has none yet. */
export function helmBinary(): string {
  if (helmPath === undefined) {
    const output = execFileSync('bash', [BUILD_SCRIPT], { encoding: 'utf8', timeout: BUILD_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'inherit'] });
    const binDir = output.trim().split('\n').pop() ?? '';
    helmPath = join(binDir, 'helm');
  }
  return helmPath;
}

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs helm; resolves with the exit code instead of rejecting, so tests can assert failures. */
export function helm(args: readonly string[]): Promise<HelmResult> {
  const binary = helmBinary();
  return new Promise((resolve) => {
    execFile(binary, [...args], { encoding: 'utf8', timeout: HELM_TIMEOUT_MS, maxBuffer: OUTPUT_BYTES_MAX, cwd: REPO_ROOT }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** `--set`-free value sets: each is passed to helm as `--set-json key=<json>` per top-level key. */
export type Values = Readonly<Record<string, unknown>>;

function valueArgs(values: Values): string[] {
  return Object.entries(values).flatMap(([key, value]) => ['--set-json', `${key}=${JSON.stringify(value)}`]);
}

/** A Kubernetes object as rendered, read as plain JSON. */
export interface RenderedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly [field: string]: unknown;
}

export interface Rendered {
  /** helm's output as it is, for kubectl. */
  readonly yaml: string;
  readonly objects: readonly RenderedObject[];
}

export const RELEASE = 'dkv';
export const RELEASE_NAMESPACE = 'dynamokv-system';

/** `helm template` of the chart with these values; throws with helm's message when it fails. */
export async function renderChart(values: Values = {}, namespace = RELEASE_NAMESPACE): Promise<Rendered> {
  const result = await helm(['template', RELEASE, CHART_DIR, '--namespace', namespace, ...valueArgs(values)]);
  if (result.code !== 0) throw new Error(`helm template failed (${result.code}): ${result.stderr}`);
  return { yaml: result.stdout, objects: await parseManifests(result.stdout) };
}

/** `helm template` expected to fail: resolves with helm's error output. */
export async function renderChartError(values: Values): Promise<string> {
  const result = await helm(['template', RELEASE, CHART_DIR, '--namespace', RELEASE_NAMESPACE, ...valueArgs(values)]);
  if (result.code === 0) throw new Error(`helm template succeeded but was expected to fail for ${JSON.stringify(values)}`);
  return result.stderr;
}

export async function lintChart(values: Values = {}): Promise<HelmResult> {
  return helm(['lint', '--strict', CHART_DIR, ...valueArgs(values)]);
}

/** Splits helm's multi-document output and parses each document with helm's own YAML parser. */
async function parseManifests(yaml: string): Promise<RenderedObject[]> {
  const documents = yaml.split(/^---[ \t]*$/m).filter((document) => document.split('\n').some((line) => line.trim() !== '' && !line.trimStart().startsWith('#')));
  if (documents.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), 'dkv-helm-'));
  try {
    const valuesPath = join(dir, 'documents.json');
    // JSON is YAML, so the documents travel to helm as JSON strings in a values file.
    writeFileSync(valuesPath, JSON.stringify({ documents }));
    const parsed = ((await runToJson(valuesPath)) as { documents?: unknown }).documents;
    if (!Array.isArray(parsed)) throw new Error('the to-json chart did not return a list of documents');
    for (const object of parsed as Array<Record<string, unknown>>) {
      if ('Error' in object) throw new Error(`helm could not parse a rendered document: ${String(object.Error)}`);
    }
    return parsed as RenderedObject[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runToJson(valuesPath: string): Promise<unknown> {
  const result = await helm(['template', 'to-json', TO_JSON_CHART, '--values', valuesPath]);
  if (result.code !== 0) throw new Error(`helm could not read ${valuesPath}: ${result.stderr}`);
  const json = result.stdout.split('\n').filter((line) => line !== '---' && !line.startsWith('# Source:')).join('\n');
  return JSON.parse(json) as unknown;
}

/** A YAML map read by helm itself and returned as JSON (see the file header). */
export function yamlMapToJson(path: string): Promise<unknown> {
  return runToJson(path);
}

export function chartFile(relativePath: string): string {
  return readFileSync(join(CHART_DIR, relativePath), 'utf8');
}

/** The objects of one kind, optionally with one name. */
export function ofKind(rendered: Rendered, kind: string, name?: string): RenderedObject[] {
  return rendered.objects.filter((object) => object.kind === kind && (name === undefined || object.metadata.name === name));
}

/** Exactly one object of this kind (and name); throws naming what it found otherwise. */
export function single(rendered: Rendered, kind: string, name?: string): RenderedObject {
  const found = ofKind(rendered, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${rendered.objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found[0] as RenderedObject;
}
