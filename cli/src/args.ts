/**
 * Command-line parsing of the `dynamokv` CLI, with node:util parseArgs.
 *
 * Parsing is pure (argv and environment in, a Command or a UsageError out) so it is unit-tested
 * without processes. Global options may come before or after the subcommand.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { COMMANDS, GLOBAL_OPTIONS, type CommandName, type OptionSpec } from './usage';

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:8080';

export class UsageError extends Error {
  constructor(
    message: string,
    /** The subcommand whose help to point at, when known. */
    readonly command?: CommandName,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Globals {
  readonly endpoints: string[];
  readonly timeoutMs: number;
  readonly retries: number | undefined;
  /**
   * Where the bearer token comes from: a file (--token-file, $DYNAMOKV_TOKEN_FILE) or the
   * environment ($DYNAMOKV_TOKEN). There is no flag for the token itself: other users can read a
   * process's arguments.
   */
  readonly tokenFile?: string;
  readonly token?: string;
  /** PEM CA file for https endpoints (--ca-file, $DYNAMOKV_CA_FILE). */
  readonly caFile?: string;
}

export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

/** A subcommand to run, with its positionals and its own options (globals apart). */
export interface RunCommand<K extends CommandName = CommandName> {
  readonly kind: K;
  readonly globals: Globals;
  readonly positionals: string[];
  readonly options: OptionValues;
}

export type Command = { readonly kind: 'help'; readonly topic: CommandName | undefined } | { readonly kind: 'version' } | RunCommand;

type ParseOptions = NonNullable<ParseArgsConfig['options']>;

function toParseOptions(specs: readonly OptionSpec[]): ParseOptions {
  const options: ParseOptions = {};
  for (const spec of specs) {
    options[spec.name] = spec.short === undefined ? { type: spec.type, multiple: spec.multiple ?? false } : { type: spec.type, short: spec.short, multiple: spec.multiple ?? false };
  }
  return options;
}

/** Finds the subcommand: the first argument that is neither an option nor a global option's value. */
function findCommandIndex(argv: readonly string[]): number {
  const valued = new Set<string>();
  for (const spec of GLOBAL_OPTIONS) {
    if (spec.type !== 'string') continue;
    valued.add(`--${spec.name}`);
    if (spec.short !== undefined) valued.add(`-${spec.short}`);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return i + 1 < argv.length ? i + 1 : -1;
    if (!arg.startsWith('-') || arg === '-') return i;
    if (valued.has(arg)) i++;
  }
  return -1;
}

function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

export function parseCommandLine(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Command {
  const index = findCommandIndex(argv);
  if (index < 0) {
    if (argv.includes('--version')) return { kind: 'version' };
    if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) return { kind: 'help', topic: undefined };
    throw new UsageError('missing command');
  }
  const name = argv[index]!;
  if (name === 'help') {
    const topic = argv[index + 1];
    if (topic !== undefined && !isCommandName(topic)) throw new UsageError(`unknown command "${topic}"`);
    return { kind: 'help', topic };
  }
  if (!isCommandName(name)) throw new UsageError(`unknown command "${name}"`);
  const spec = COMMANDS[name];
  const rest = [...argv.slice(0, index), ...argv.slice(index + 1)];
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: toParseOptions([...GLOBAL_OPTIONS, ...spec.options]), allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message.split('\n')[0]! : String(error), name);
  }
  if (parsed.values.help === true) return { kind: 'help', topic: name };
  const { positionals } = parsed;
  if (positionals.length < spec.positionalsMin) throw new UsageError(`${name} needs ${spec.positionalsUsage}`, name);
  if (positionals.length > spec.positionalsMax) throw new UsageError(`${name} takes at most ${spec.positionalsMax} arguments (${spec.positionalsUsage}), got ${positionals.length}`, name);
  const options: Record<string, string | boolean | undefined> = {};
  for (const option of spec.options) {
    const value = parsed.values[option.name];
    options[option.name] = Array.isArray(value) ? String(value[value.length - 1]) : value;
  }
  return { kind: name, globals: parseGlobals(parsed.values, env, name), positionals, options };
}

function parseGlobals(values: Record<string, string | boolean | (string | boolean)[] | undefined>, env: Readonly<Record<string, string | undefined>>, command: CommandName): Globals {
  const given = values.endpoint;
  const fromFlags = Array.isArray(given) ? given.map(String) : typeof given === 'string' ? [given] : [];
  const source = fromFlags.length > 0 ? fromFlags : env.DYNAMOKV_ENDPOINTS !== undefined && env.DYNAMOKV_ENDPOINTS.trim() !== '' ? [env.DYNAMOKV_ENDPOINTS] : [DEFAULT_ENDPOINT];
  const endpoints = source.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s.length > 0);
  if (endpoints.length === 0) throw new UsageError('--endpoint needs at least one URL', command);
  const timeoutMs = integerOption(values['timeout-ms'], 'timeout-ms', command, 1) ?? 5000;
  const retries = integerOption(values.retries, 'retries', command, 0);
  const tokenFile = stringValue(values['token-file']) ?? nonEmpty(env.DYNAMOKV_TOKEN_FILE);
  const token = tokenFile === undefined ? nonEmpty(env.DYNAMOKV_TOKEN) : undefined;
  const caFile = stringValue(values['ca-file']) ?? nonEmpty(env.DYNAMOKV_CA_FILE);
  return { endpoints, timeoutMs, retries, ...(tokenFile === undefined ? {} : { tokenFile }), ...(token === undefined ? {} : { token }), ...(caFile === undefined ? {} : { caFile }) };
}

function stringValue(value: unknown): string | undefined {
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  return typeof last === 'string' && last !== '' ? last : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** Reads an integer option; undefined when absent, a UsageError when malformed or below `min`. */
export function integerOption(value: unknown, name: string, command: CommandName, min: number): number | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? String(value[value.length - 1]) : String(value);
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${text}"`, command);
  return Number(text);
}

/** Reads a quorum option (r, w, dw, pr, pw): a positive integer or one/quorum/all. */
export function quorumOption(value: unknown, name: string, command: CommandName): number | 'one' | 'quorum' | 'all' | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (text === 'one' || text === 'quorum' || text === 'all') return text;
  if (/^\d+$/.test(text) && Number(text) >= 1) return Number(text);
  throw new UsageError(`--${name} must be a positive integer or one/quorum/all, got "${text}"`, command);
}
