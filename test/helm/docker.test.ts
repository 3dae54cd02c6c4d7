/**
 * The node and operator images (docker/*.Dockerfile). No container engine runs here, so the images
 * cannot be built; this test checks what can be checked without one, against the real files:
 * - each Dockerfile is multi-stage on node:24-slim, installs with `npm ci`, compiles, prunes to
 *   production dependencies, and runs as a numeric non-root user from the compiled entry point;
 * - everything it COPYs from the build context exists and is not cut by .dockerignore;
 * - docker/tsconfig.build.json (what the build stage compiles) compiles, the entry points the
 *   images start are in its output, that output needs only production dependencies, and both
 *   entry points run from an image-like layout (/app/package.json beside /app/dist).
 */
import { execFile, execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { REPO_ROOT } from '../support/nodeProcess';

const IMAGES = [
  { dockerfile: 'docker/node.Dockerfile', entryPoint: 'dist/node/src/main.js' },
  { dockerfile: 'docker/operator.Dockerfile', entryPoint: 'dist/operator/src/main.js' },
] as const;

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(dockerfile: string): Instruction[] {
  const joined = readFileSync(join(REPO_ROOT, dockerfile), 'utf8')
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

/** Instructions grouped by stage (each starts with FROM). */
function stages(all: readonly Instruction[]): Instruction[][] {
  const result: Instruction[][] = [];
  for (const instruction of all) {
    if (instruction.keyword === 'FROM') result.push([]);
    result[result.length - 1]?.push(instruction);
  }
  return result;
}

/** .dockerignore patterns as regular expressions over context-relative paths. */
function dockerignore(): RegExp[] {
  return readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((pattern) => {
      expect(pattern.startsWith('!')).toBe(false);
      // "**/" matches any number of leading directories; "*" and "?" stay within one segment.
      const source = pattern
        .split('**/')
        .map((part) => part.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
        .join('(?:.*/)?');
      return new RegExp(`^${source}$`);
    });
}

/** True when the path, or a directory above it, matches a .dockerignore pattern. */
function ignored(path: string, patterns: readonly RegExp[]): boolean {
  const segments = path.split('/');
  return segments.some((_, index) => patterns.some((pattern) => pattern.test(segments.slice(0, index + 1).join('/'))));
}

describe.each(IMAGES)('$dockerfile', ({ dockerfile, entryPoint }) => {
  const all = instructions(dockerfile);
  const [build, runtime] = stages(all);

  test('is two stages on node:24-slim: build, then runtime', () => {
    expect(all.filter((i) => i.keyword === 'FROM').map((i) => i.args)).toEqual(['node:24-slim AS build', 'node:24-slim']);
    expect(build).toBeDefined();
    expect(runtime).toBeDefined();
  });

  test('builds with npm ci and tsc, then prunes to production dependencies', () => {
    const runs = (build ?? []).filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(/npm ci\b/);
    expect(runs).toContain('tsc -p docker/tsconfig.build.json');
    expect(runs).toContain('npm prune --omit=dev');
    expect(runs.indexOf('tsc -p')).toBeLessThan(runs.indexOf('npm prune'));
  });

  test('ships only package.json, production node_modules and dist from the build stage', () => {
    const copies = (runtime ?? []).filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
    expect(copies.map((i) => i.keyword)).toEqual(['COPY', 'COPY', 'COPY']);
    expect(copies.map((i) => i.args)).toEqual(['--from=build /src/package.json ./package.json', '--from=build /src/node_modules ./node_modules', '--from=build /src/dist ./dist']);
    expect((runtime ?? []).find((i) => i.keyword === 'ENV')?.args).toBe('NODE_ENV=production');
  });

  test('runs as a numeric non-root user, from the compiled entry point', () => {
    const users = (runtime ?? []).filter((i) => i.keyword === 'USER').map((i) => i.args);
    expect(users).toHaveLength(1);
    const [uid, gid] = (users[0] ?? '').split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    // The operator's node pods and the chart's operator pod both run as 10001.
    expect(uid).toBe(10001);
    const entry = (runtime ?? []).find((i) => i.keyword === 'ENTRYPOINT');
    expect(JSON.parse(entry?.args ?? '[]')).toEqual(['node', `/app/${entryPoint}`]);
    expect((runtime ?? []).find((i) => i.keyword === 'WORKDIR')?.args).toBe('/app');
  });

  test('copies only files that exist and that .dockerignore keeps in the context', () => {
    const patterns = dockerignore();
    const sources = (build ?? [])
      .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.json', 'docker/tsconfig.build.json', 'node/src', 'operator/src']));
    for (const source of sources) {
      expect({ source, exists: existsSync(join(REPO_ROOT, source)) }).toEqual({ source, exists: true });
      expect({ source, ignored: ignored(source, patterns) }).toEqual({ source, ignored: false });
    }
    // What must stay out of the context does: local builds and dependencies, tests, data.
    for (const path of ['node_modules', 'dist', 'node/src/storage/rocksdb.test.ts', 'test/helm/chart.test.ts', 'data', 'client/src/testing/x/node_modules']) {
      expect({ path, ignored: ignored(path, patterns) }).toEqual({ path, ignored: true });
    }
  });
});

describe('docker/tsconfig.build.json', () => {
  let appDir: string;
  let compiled: string[];

  beforeAll(() => {
    appDir = join(mkdtempSync(join(tmpdir(), 'dkv-image-')), 'app');
    mkdirSync(appDir, { recursive: true });
    copyFileSync(join(REPO_ROOT, 'package.json'), join(appDir, 'package.json'));
    execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO_ROOT, 'docker', 'tsconfig.build.json'), '--outDir', join(appDir, 'dist')], {
      cwd: REPO_ROOT,
      stdio: 'pipe',
      timeout: 5 * 60_000,
    });
    compiled = listFiles(join(appDir, 'dist')).filter((file) => file.endsWith('.js'));
  }, 5 * 60_000);

  afterAll(() => {
    if (appDir !== undefined) rmSync(join(appDir, '..'), { recursive: true, force: true });
  });

  test('puts both images\' entry points where their ENTRYPOINT looks, and no test code', () => {
    for (const { entryPoint } of IMAGES) expect({ entryPoint, exists: existsSync(join(appDir, entryPoint)) }).toEqual({ entryPoint, exists: true });
    expect(compiled.filter((file) => /\.test\.js$|^dist\/test\/|^dist\/bench\//.test(relative(appDir, file)))).toEqual([]);
  });

  test('needs only production dependencies at run time', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const builtins = new Set(builtinModules);
    const needed = new Set<string>();
    for (const file of compiled) {
      for (const match of readFileSync(file, 'utf8').matchAll(/require\("([^"./][^"]*)"\)|import\("([^"./][^"]*)"\)/g)) {
        const specifier = match[1] ?? match[2] ?? '';
        if (specifier.startsWith('node:') || builtins.has(specifier)) continue;
        needed.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] ?? specifier));
      }
    }
    expect(needed.size).toBeGreaterThan(3);
    expect([...needed].filter((name) => pkg.dependencies[name] === undefined)).toEqual([]);
  });

  test.each([
    ['node', 'dist/node/src/main.js', 'Starts one dynamokv storage node'],
    ['operator', 'dist/operator/src/main.js', 'dynamokv-operator: runs DynamoCluster resources'],
  ])('the %s entry point starts from the image layout', async (_image, entryPoint, banner) => {
    const result = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      // NODE_PATH stands in for /app/node_modules, which the image has beside dist/.
      execFile(process.execPath, [join(appDir, entryPoint), '--help'], { env: { ...process.env, NODE_PATH: join(REPO_ROOT, 'node_modules') }, timeout: 30_000 }, (error, stdout) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout });
      });
    });
    expect(result.stdout).toContain(banner);
    expect(result.code).toBe(0);
  });
});

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? listFiles(join(dir, entry.name)) : [join(dir, entry.name)]));
}
