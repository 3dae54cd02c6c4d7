/**
 * The node's configuration: one schema, four sources. For each field the first source that sets
 * it wins: command-line flag > environment variable (DYNAMOKV_*) > JSON file (--config) >
 * default. Every value is checked before the node starts, and a bad one stops start-up with a
 * message naming the field, the value and where it came from (exit code 2 in main.ts).
 *
 * Secrets (contextSecret, authToken) come only from the environment or the file: a flag would
 * show them to anyone who can list processes.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseTokensFile, tokenProblem, type Scope, type ScopedToken } from './api/auth';
import { CONTEXT_SECRET_BYTES_MIN } from './api/contextToken';
import { parseQuorumSpec, type QuorumSpec } from './core/quorum';
import { DEFAULT_PARTITION_COUNT, DEFAULT_REPLICATION_FACTOR, isValidPartitionCount } from './core/partition';
import { LOG_LEVELS, type LogLevel } from './log';

export interface Limits {
  readonly maxBucketBytes: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly maxSiblings: number;
  readonly maxInFlightRequests: number;
  readonly maxLockWaiters: number;
}

export interface NodeConfig {
  readonly nodeId: string;
  readonly host: string;
  /** The address other nodes and clients are told to use (a pod IP when host is 0.0.0.0). */
  readonly advertiseHost: string;
  readonly port: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly partitionCount: number;
  readonly replicationFactor: number;
  readonly seeds: readonly string[];
  /**
   * When true, /readyz stays 503 until the node was admitted to a cluster (POST /v1/admin/init on
   * a founding node, or a join) and its member state is normal: the operator's readiness gate.
   */
  readonly requireAdmission: boolean;
  /** Default quorums when neither the request nor the bucket sets them. */
  readonly quorums: { readonly r: QuorumSpec; readonly w: QuorumSpec; readonly dw: QuorumSpec };
  /** How often this node pings members and gossips the ring. */
  readonly gossipIntervalMs: number;
  /** Timeout of one call to another node. */
  readonly replicaTimeoutMs: number;
  /** When set, the peer port requires it as a bearer token (and this node sends it). */
  readonly peerSecret: string | undefined;
  readonly limits: Limits;
  readonly syncWrites: boolean;
  readonly contextSecret: string;
  /** True when no secret was configured and the development default is in use. */
  readonly contextSecretIsDefault: boolean;
  /** When set, /v1 routes need `Authorization: Bearer <authToken>`. */
  readonly authToken: string | undefined;
  /**
   * Every client token with its scope (api/auth.ts): authToken (admin), readTokens, writeTokens,
   * adminTokens and the lines of tokensFile. Empty: the client port needs no token.
   */
  readonly clientTokens: readonly ScopedToken[];
  /** HTTPS on the client port (and on the peer port with `peer`), or undefined for plain HTTP. */
  readonly tls: NodeTls | undefined;
  readonly logLevel: LogLevel;
  /** Bound on graceful shutdown; after it the node closes storage and exits anyway. */
  readonly shutdownTimeoutMs: number;
  /** Background repair of replicas by tree exchange (cluster/antiEntropy.ts). */
  readonly antiEntropy: {
    /** Milliseconds between exchanges; 0 disables them (the node still answers peers). */
    readonly intervalMs: number;
    readonly keysPerExchangeMax: number;
    readonly bytesPerExchangeMax: number;
  };
  /** Streaming of partitions on join and leave (cluster/handoff.ts). */
  readonly handoff: {
    /** false: joins and leaves change the plan at once and data follows by repair only. */
    readonly enabled: boolean;
    readonly bytesPerSecondMax: number;
    /** Transfers one node sends at a time. */
    readonly concurrencyMax: number;
  };
  /** Reaping of tombstones every member has confirmed (cluster/reaper.ts, core/tombstones.ts). */
  readonly tombstones: {
    /** A tombstone younger than this is never reaped. */
    readonly graceMs: number;
    /** Milliseconds between reaping rounds; 0 disables reaping (tombstones are kept for ever). */
    readonly reapIntervalMs: number;
    /** Tombstones confirmed with the other members per round. */
    readonly keysPerRoundMax: number;
  };
}

export interface NodeTls {
  /** PEM certificate (chain) and private key, read at start-up. */
  readonly certFile: string;
  readonly keyFile: string;
  /** The peer port serves HTTPS with the same certificate, and this node calls peers over HTTPS. */
  readonly peer: boolean;
  /** PEM CA bundle that peer certificates must chain to; undefined: the system's CAs. */
  readonly peerCaFile: string | undefined;
}

/** Shared by every node that does not set one; fine on a laptop, never in production. */
export const DEVELOPMENT_CONTEXT_SECRET = 'dynamokv-development-context-secret';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export type ConfigResult = { readonly kind: 'help'; readonly text: string } | { readonly kind: 'config'; readonly config: NodeConfig };

type Kind = 'string' | 'integer' | 'boolean' | 'list' | 'secret' | 'secret-list';

interface Field {
  readonly key: string;
  /** Location in the JSON file, e.g. ['limits', 'maxKeyBytes']. */
  readonly filePath: readonly string[];
  /** Absent for secrets, which flags must not carry. */
  readonly flag?: string;
  readonly aliases?: readonly string[];
  readonly env: string;
  readonly kind: Kind;
  readonly help: string;
}

function field(key: string, kind: Kind, help: string, extra: { flag?: string | null; aliases?: string[]; group?: string } = {}): Field {
  const kebab = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const snake = key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
  const flag = extra.flag === null ? undefined : (extra.flag ?? kebab);
  return { key, kind, help, env: `DYNAMOKV_${snake}`, filePath: extra.group ? [extra.group, key] : [key], aliases: extra.aliases, ...(flag ? { flag } : {}) };
}

const FIELDS: readonly Field[] = [
  field('nodeId', 'string', 'Stable id of this node in the ring (required; letters, digits, . _ -).'),
  field('host', 'string', 'Address the client and peer ports listen on (default 127.0.0.1).'),
  field('advertiseHost', 'string', 'Address put in this node\'s client and peer URLs for other nodes and clients (default: host; required when host is 0.0.0.0 or ::).'),
  field('port', 'integer', 'Client API port (default 8080).'),
  field('peerPort', 'integer', 'Port for traffic between nodes (default port + 1000).'),
  field('dataDir', 'string', 'RocksDB directory (default ./data/<nodeId>).'),
  field('partitionCount', 'integer', `Partitions Q, a power of two, fixed at cluster creation (default ${DEFAULT_PARTITION_COUNT}).`, { flag: 'partitions', aliases: ['partition-count'] }),
  field('replicationFactor', 'integer', `Replicas N of every key (default ${DEFAULT_REPLICATION_FACTOR}).`, { flag: 'replication', aliases: ['replication-factor'] }),
  field('seeds', 'list', 'Comma-separated host:peerPort of seed nodes (default none).'),
  field('requireAdmission', 'boolean', '/readyz answers 503 until the node was admitted (POST /v1/admin/init or a join) and is a normal member (default false; the operator sets it).'),
  field('readQuorum', 'string', 'Default r: an integer or one, quorum, all (default quorum).', { flag: 'r' }),
  field('writeQuorum', 'string', 'Default w: an integer or one, quorum, all (default quorum).', { flag: 'w' }),
  field('durableWriteQuorum', 'string', 'Default dw: replicas that must fsync before a write is acknowledged (default 0).', { flag: 'dw' }),
  field('gossipIntervalMs', 'integer', 'Milliseconds between heartbeat and gossip rounds (default 1000).'),
  field('replicaTimeoutMs', 'integer', 'Timeout of one request to another node in milliseconds (default 2000).'),
  field('peerSecret', 'secret', 'Shared secret the peer port requires from other nodes (env/file only; default none).', { flag: null }),
  field('maxBucketBytes', 'integer', 'Longest bucket name in UTF-8 bytes (default 100).', { group: 'limits' }),
  field('maxKeyBytes', 'integer', 'Longest key in UTF-8 bytes (default 1024).', { group: 'limits' }),
  field('maxValueBytes', 'integer', 'Largest value in bytes (default 1048576).', { group: 'limits' }),
  field('maxSiblings', 'integer', 'Siblings kept per key; older ones are dropped and counted (default 100).', { group: 'limits' }),
  field('maxInFlightRequests', 'integer', 'Client requests served at once; more get 503 OVERLOADED (default 1024).', { group: 'limits' }),
  field('maxLockWaiters', 'integer', 'Writes queued on one key; more get 503 OVERLOADED (default 128).', { group: 'limits' }),
  field('syncWrites', 'boolean', 'fsync every write before answering (default false).'),
  field('contextSecret', 'secret', `HMAC key of context tokens, shared by the cluster, >= ${CONTEXT_SECRET_BYTES_MIN} bytes (env/file only).`, { flag: null }),
  field('authToken', 'secret', 'A client token with the admin scope; with any token set, /v1 routes need one (env/file only).', { flag: null }),
  field('readTokens', 'secret-list', 'Comma-separated client tokens with the read scope (env/file only).', { flag: null }),
  field('writeTokens', 'secret-list', 'Comma-separated client tokens with the write scope: read plus key writes and bucket properties (env/file only).', { flag: null }),
  field('adminTokens', 'secret-list', 'Comma-separated client tokens with the admin scope: everything (env/file only).', { flag: null }),
  field('tokensFile', 'string', 'File of client tokens, one "<scope> <token>" per line (scope read, write or admin; # comments).'),
  field('tlsCertFile', 'string', 'PEM certificate: serve HTTPS on the client port (needs tlsKeyFile).'),
  field('tlsKeyFile', 'string', 'PEM private key of tlsCertFile.'),
  field('peerTls', 'boolean', 'Serve the peer port over HTTPS with the same certificate and call peers over HTTPS (default false; needs tlsCertFile).'),
  field('peerTlsCaFile', 'string', 'PEM CA bundle that other nodes\' certificates must chain to (default: the system CAs).'),
  field('logLevel', 'string', `One of ${LOG_LEVELS.join(', ')} (default info).`),
  field('shutdownTimeoutMs', 'integer', 'Longest graceful shutdown in milliseconds (default 10000).'),
  field('antiEntropyIntervalMs', 'integer', 'Milliseconds between anti-entropy exchanges; 0 disables them (default 10000).'),
  field('antiEntropyKeysPerExchangeMax', 'integer', 'Keys one anti-entropy exchange repairs at most (default 1000).'),
  field('antiEntropyBytesPerExchangeMax', 'integer', 'Bytes one anti-entropy exchange moves at most, roughly (default 16777216).'),
  field('handoff', 'boolean', 'Stream partitions to their new owners before a join or leave takes effect (default true).'),
  field('handoffBytesPerSecondMax', 'integer', 'Throttle of one node\'s handoff streams in bytes per second (default 41943040).'),
  field('handoffConcurrencyMax', 'integer', 'Transfers one node streams at a time, 1 or 2 (default 2).'),
  field('tombstoneGraceMs', 'integer', 'A delete is reaped no sooner than this many milliseconds after it was written, and only once every member holds it (default 3600000).'),
  field('tombstoneReapIntervalMs', 'integer', 'Milliseconds between tombstone reaping rounds; 0 disables reaping (default 10000).'),
  field('tombstoneReapKeysPerRoundMax', 'integer', 'Tombstones one reaping round checks with the other members at most (default 1000).'),
];

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const INTEGER = /^-?[0-9]{1,16}$/;

type RawValue = { readonly value: unknown; readonly source: string };

/**
 * Reads flags, environment and file, and returns the validated configuration (or the help text).
 * Throws ConfigError listing every problem found.
 */
export function loadConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ConfigResult {
  const flags = parseFlags(argv);
  if (flags.help === true) return { kind: 'help', text: helpText() };
  const configPath = stringOrUndefined(flags.config) ?? env.DYNAMOKV_CONFIG;
  const file = configPath === undefined ? {} : readConfigFile(configPath);
  const problems: string[] = [];
  const raw = new Map<string, RawValue>();
  for (const f of FIELDS) {
    const found = lookup(f, flags, env, file, configPath ?? '');
    if (found !== undefined) raw.set(f.key, found);
  }
  const config = build(new Reader(raw, problems));
  if (problems.length > 0) throw new ConfigError(problems);
  return { kind: 'config', config };
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
class Reader {
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

function build(r: Reader): NodeConfig {
  if (!r.has('nodeId')) r.problems.push('nodeId: required (--node-id, DYNAMOKV_NODE_ID or "nodeId" in the config file)');
  const nodeId = r.string('nodeId', 'node', (v) => (NODE_ID.test(v) ? undefined : 'must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit'));
  const port = r.integer('port', 8080, 1, 65535);
  const peerPort = r.integer('peerPort', port + 1000, 1, 65535);
  if (!r.has('peerPort') && port + 1000 > 65535) r.problems.push(`peerPort: the default port + 1000 = ${port + 1000} is above 65535; set peerPort`);
  else if (peerPort === port) r.fail('peerPort', `must differ from port ${port}`);
  const partitionCount = r.integer('partitionCount', DEFAULT_PARTITION_COUNT, 1, 65536);
  if (!isValidPartitionCount(partitionCount)) r.fail('partitionCount', 'must be a power of two');
  const replicationFactor = r.integer('replicationFactor', DEFAULT_REPLICATION_FACTOR, 1, 16);
  const contextSecret = r.string('contextSecret', DEVELOPMENT_CONTEXT_SECRET, (v) =>
    Buffer.byteLength(v) >= CONTEXT_SECRET_BYTES_MIN ? undefined : `must be at least ${CONTEXT_SECRET_BYTES_MIN} bytes`,
  );
  const authToken = r.has('authToken') ? r.string('authToken', '', (v) => (v.length >= 16 && /^[\x21-\x7e]+$/.test(v) ? undefined : 'must be at least 16 printable ASCII characters')) : undefined;
  const clientTokens = readClientTokens(r, authToken);
  const tls = readTls(r);
  const validHost = (v: string) => (isIP(v) !== 0 || HOST_NAME.test(v) ? undefined : 'must be an IP address or a host name');
  const host = r.string('host', '127.0.0.1', validHost);
  const wildcard = host === '0.0.0.0' || host === '::';
  const advertiseHost = r.string('advertiseHost', host, (v) => validHost(v) ?? (v === '0.0.0.0' || v === '::' ? 'must be an address others can reach, not a wildcard' : undefined));
  if (wildcard && advertiseHost === host) r.fail('advertiseHost', `is required when host is ${host}: other nodes need an address they can reach`);
  return {
    nodeId,
    host,
    advertiseHost,
    port,
    peerPort,
    dataDir: resolve(r.string('dataDir', `./data/${nodeId}`, (v) => (v.length > 0 ? undefined : 'must not be empty'))),
    partitionCount,
    replicationFactor,
    quorums: {
      r: quorumField(r, 'readQuorum', 'quorum', replicationFactor),
      w: quorumField(r, 'writeQuorum', 'quorum', replicationFactor),
      dw: quorumField(r, 'durableWriteQuorum', 0, replicationFactor),
    },
    gossipIntervalMs: r.integer('gossipIntervalMs', 1000, 50, 60_000),
    replicaTimeoutMs: r.integer('replicaTimeoutMs', 2000, 10, 120_000),
    peerSecret: r.has('peerSecret') ? r.string('peerSecret', '', (v) => (v.length >= 16 && /^[\x21-\x7e]+$/.test(v) ? undefined : 'must be at least 16 printable ASCII characters')) : undefined,
    requireAdmission: r.boolean('requireAdmission', false),
    seeds: r.list('seeds', (s) => (/^[^\s:,]+:[0-9]{1,5}$/.test(s) && Number(s.split(':')[1]) <= 65535 ? undefined : `"${s}" is not host:port`)),
    limits: {
      maxBucketBytes: r.integer('maxBucketBytes', 100, 1, 4096),
      maxKeyBytes: r.integer('maxKeyBytes', 1024, 1, 4096),
      maxValueBytes: r.integer('maxValueBytes', 1024 * 1024, 1, 64 * 1024 * 1024),
      maxSiblings: r.integer('maxSiblings', 100, 1, 10000),
      maxInFlightRequests: r.integer('maxInFlightRequests', 1024, 1, 1_000_000),
      maxLockWaiters: r.integer('maxLockWaiters', 128, 1, 100_000),
    },
    syncWrites: r.boolean('syncWrites', false),
    contextSecret,
    contextSecretIsDefault: !r.has('contextSecret'),
    authToken,
    clientTokens,
    tls,
    logLevel: r.string('logLevel', 'info', (v) => ((LOG_LEVELS as readonly string[]).includes(v) ? undefined : `must be one of ${LOG_LEVELS.join(', ')}`)) as LogLevel,
    shutdownTimeoutMs: r.integer('shutdownTimeoutMs', 10_000, 100, 600_000),
    antiEntropy: {
      intervalMs: r.integer('antiEntropyIntervalMs', 10_000, 0, 3_600_000),
      keysPerExchangeMax: r.integer('antiEntropyKeysPerExchangeMax', 1000, 1, 10_000),
      bytesPerExchangeMax: r.integer('antiEntropyBytesPerExchangeMax', 16 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    },
    handoff: {
      enabled: r.boolean('handoff', true),
      bytesPerSecondMax: r.integer('handoffBytesPerSecondMax', 40 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      concurrencyMax: r.integer('handoffConcurrencyMax', 2, 1, 2),
    },
    tombstones: {
      graceMs: r.integer('tombstoneGraceMs', 3_600_000, 0, 30 * 24 * 3_600_000),
      reapIntervalMs: r.integer('tombstoneReapIntervalMs', 10_000, 0, 3_600_000),
      keysPerRoundMax: r.integer('tombstoneReapKeysPerRoundMax', 1000, 1, 100_000),
    },
  };
}

/** A quorum default: integer or one/quorum/all, and an integer must fit N. */
function quorumField(r: Reader, key: string, fallback: QuorumSpec, n: number): QuorumSpec {
  const text = r.string(key, String(fallback), (v) => (parseQuorumSpec(v) === undefined ? 'must be an integer or one, quorum, all' : undefined));
  const spec = parseQuorumSpec(text) ?? fallback;
  if (typeof spec === 'number' && spec > n) r.fail(key, `must not exceed the replication factor ${n}`);
  return spec;
}

/** Client tokens from every source; each source's problems are recorded without the tokens. */
function readClientTokens(r: Reader, authToken: string | undefined): ScopedToken[] {
  const tokens: ScopedToken[] = authToken === undefined ? [] : [{ scope: 'admin', token: authToken }];
  for (const [key, scope] of [['readTokens', 'read'], ['writeTokens', 'write'], ['adminTokens', 'admin']] as const satisfies readonly (readonly [string, Scope])[]) {
    for (const token of r.list(key, tokenProblem)) tokens.push({ scope, token });
  }
  const path = r.has('tokensFile') ? r.string('tokensFile', '', (v) => (v.length > 0 ? undefined : 'must not be empty')) : '';
  if (path === '') return tokens;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    r.fail('tokensFile', `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return tokens;
  }
  const parsed = parseTokensFile(text);
  for (const problem of parsed.problems) r.fail('tokensFile', problem);
  if (parsed.problems.length === 0 && parsed.tokens.length === 0) r.fail('tokensFile', 'holds no tokens');
  return [...tokens, ...parsed.tokens];
}

/** TLS needs both files; peer TLS needs TLS. The files are read at start-up, not here. */
function readTls(r: Reader): NodeTls | undefined {
  const certFile = r.string('tlsCertFile', '', (v) => (v.length > 0 ? undefined : 'must not be empty'));
  const keyFile = r.string('tlsKeyFile', '', (v) => (v.length > 0 ? undefined : 'must not be empty'));
  const peer = r.boolean('peerTls', false);
  const peerCaFile = r.has('peerTlsCaFile') ? r.string('peerTlsCaFile', '', (v) => (v.length > 0 ? undefined : 'must not be empty')) : undefined;
  if ((certFile === '') !== (keyFile === '')) r.problems.push('tlsCertFile, tlsKeyFile: set both or neither');
  if (certFile === '' || keyFile === '') {
    if (peer) r.fail('peerTls', 'needs tlsCertFile and tlsKeyFile');
    return undefined;
  }
  return { certFile: resolve(certFile), keyFile: resolve(keyFile), peer, peerCaFile: peerCaFile === undefined ? undefined : resolve(peerCaFile) };
}

/** The configuration as it may be logged: secrets replaced, tokens counted per scope. */
export function describeConfig(config: NodeConfig): Record<string, unknown> {
  const tokenCounts: Record<string, number> = {};
  for (const t of config.clientTokens) tokenCounts[t.scope] = (tokenCounts[t.scope] ?? 0) + 1;
  return {
    ...config,
    contextSecret: '[redacted]',
    authToken: config.authToken === undefined ? undefined : '[redacted]',
    peerSecret: config.peerSecret === undefined ? undefined : '[redacted]',
    clientTokens: tokenCounts,
  };
}

export function helpText(): string {
  const lines = [
    'Usage: node dist/node/src/main.js --node-id <id> [options]',
    '',
    'Starts one dynamokv storage node. Each setting comes from, in order of precedence:',
    'a flag, an environment variable, the JSON file given by --config, or its default.',
    '',
    '  --help                      Print this text and exit.',
    '  --config <path>             JSON file with any of the fields below (env DYNAMOKV_CONFIG).',
  ];
  for (const f of FIELDS) {
    const flag = f.flag === undefined ? '(no flag)' : `--${f.flag}${f.kind === 'boolean' ? '' : ' <value>'}`;
    lines.push(`  ${flag.padEnd(28)}${f.help}`);
    lines.push(`  ${''.padEnd(28)}env ${f.env}, file "${f.filePath.join('.')}"${f.kind === 'boolean' && f.flag ? `, --no-${f.flag}` : ''}`);
  }
  lines.push('', 'Exit codes: 0 clean shutdown, 1 runtime failure, 2 invalid configuration.');
  return lines.join('\n');
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
