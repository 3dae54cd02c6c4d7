/**
 * Where configuration values come from: flags, environment (DYNAMOKV_*) and the JSON file, in that
 * order of precedence, each value tagged with its source; and the Reader that turns raw values into
 * typed ones, recording a problem (naming field, value and source, never a secret) instead of
 * throwing, so config.ts can report every problem at once.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FIELDS, type Field } from './configFields';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const INTEGER = /^-?[0-9]{1,16}$/;

export type RawValue = { readonly value: unknown; readonly source: string };

/**
 * The raw value of every field set by a flag, the environment or the file (whose path comes from
 * --config or DYNAMOKV_CONFIG), or 'help' when --help was given. Throws ConfigError for unknown
 * flags, an unreadable file or unknown file fields.
 */
export function readSources(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Map<string, RawValue> | 'help' {
  const flags = parseFlags(argv);
  if (flags.help === true) return 'help';
  const configPath = stringOrUndefined(flags.config) ?? env.DYNAMOKV_CONFIG;
  const file = configPath === undefined ? {} : readConfigFile(configPath);
  const raw = new Map<string, RawValue>();
  for (const f of FIELDS) {
    const found = lookup(f, flags, env, file, configPath ?? '');
    if (found !== undefined) raw.set(f.key, found);
  }
  return raw;
}

function parseFlags(argv: readonly string[]): Record<string, string | boolean | undefined> {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' }, config: { type: 'string' } };
  for (const f of FIELDS) {
    for (const name of [f.flag, ...(f.aliases ?? [])]) {
      if (name !== undefined) options[name] = { type: f.kind === 'boolean' ? 'boolean' : 'string' };
    }
  }
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false, allowNegative: true });
    return values as Record<string, string | boolean | undefined>;
  } catch (error) {
    throw new ConfigError([`${(error as Error).message} (see --help)`]);
  }
}

function lookup(f: Field, flags: Record<string, string | boolean | undefined>, env: Readonly<Record<string, string | undefined>>, file: Record<string, unknown>, configPath: string): RawValue | undefined {
  for (const name of [f.flag, ...(f.aliases ?? [])]) {
    if (name !== undefined && flags[name] !== undefined) return { value: flags[name], source: `--${name}` };
  }
  const fromEnv = env[f.env];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: f.env };
  let node: unknown = file;
  for (const part of f.filePath) node = isObject(node) ? node[part] : undefined;
  if (node !== undefined) return { value: node, source: `${configPath}: ${f.filePath.join('.')}` };
  return undefined;
}

function readConfigFile(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError([`config file ${path}: ${(error as Error).message}`]);
  }
  if (!isObject(parsed)) throw new ConfigError([`config file ${path}: must hold a JSON object`]);
  const unknown = unknownFileKeys(parsed);
  if (unknown.length > 0) throw new ConfigError(unknown.map((k) => `config file ${path}: unknown field "${k}"`));
  return parsed;
}

function unknownFileKeys(file: Record<string, unknown>): string[] {
  const known = new Set(FIELDS.map((f) => f.filePath.join('.')));
  const groups = new Set(FIELDS.filter((f) => f.filePath.length > 1).map((f) => f.filePath[0]!));
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(file)) {
    if (groups.has(key) && isObject(value)) {
      for (const inner of Object.keys(value)) if (!known.has(`${key}.${inner}`)) unknown.push(`${key}.${inner}`);
    } else if (!known.has(key)) {
      unknown.push(key);
    }
  }
  return unknown;
}

/** Typed access to raw values; each getter records a problem instead of throwing. */
export class Reader {
  constructor(
    private readonly raw: Map<string, RawValue>,
    readonly problems: string[],
  ) {}

  has(key: string): boolean {
    return this.raw.has(key);
  }

  source(key: string): string {
    return this.raw.get(key)?.source ?? 'default';
  }

  fail(key: string, message: string): void {
    const found = this.raw.get(key);
    const shown = found === undefined ? '' : ` (got ${JSON.stringify(redactIfSecret(key, found.value))} from ${found.source})`;
    this.problems.push(`${key}: ${message}${shown}`);
  }

  string(key: string, fallback: string, check: (v: string) => string | undefined): string {
    const found = this.raw.get(key);
    if (found === undefined) return fallback;
    if (typeof found.value !== 'string') return this.reject(key, 'must be a string', fallback);
    const problem = check(found.value);
    return problem === undefined ? found.value : this.reject(key, problem, fallback);
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    const found = this.raw.get(key);
    if (found === undefined) return fallback;
    const value = typeof found.value === 'string' && INTEGER.test(found.value) ? Number(found.value) : found.value;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      return this.reject(key, `must be an integer from ${min} to ${max}`, fallback);
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const found = this.raw.get(key);
    if (found === undefined) return fallback;
    if (typeof found.value === 'boolean') return found.value;
    if (found.value === 'true') return true;
    if (found.value === 'false') return false;
    return this.reject(key, 'must be true or false', fallback);
  }

  list(key: string, check: (item: string) => string | undefined): string[] {
    const found = this.raw.get(key);
    if (found === undefined) return [];
    const items = typeof found.value === 'string' ? found.value.split(',').map((s) => s.trim()).filter((s) => s !== '') : found.value;
    if (!Array.isArray(items) || !items.every((i): i is string => typeof i === 'string')) return this.reject(key, 'must be a list of strings', []);
    for (const item of items) {
      const problem = check(item);
      if (problem !== undefined) return this.reject(key, problem, []);
    }
    return items;
  }

  private reject<T>(key: string, message: string, fallback: T): T {
    this.fail(key, message);
    return fallback;
  }
}

function redactIfSecret(key: string, value: unknown): unknown {
  const kind = FIELDS.find((f) => f.key === key)?.kind;
  return kind === 'secret' || kind === 'secret-list' ? '[redacted]' : value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringOrUndefined(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
