/**
 * The node's configuration: one schema, four sources. For each field the first source that sets
 * it wins: command-line flag > environment variable (DYNAMOKV_*) > JSON file (--config) >
 * default. Every value is checked before the node starts, and a bad one stops start-up with a
 * message naming the field, the value and where it came from (exit code 2 in main.ts).
 *
 * Secrets (contextSecret, authToken) come only from the environment or the file: a flag would
 * show them to anyone who can list processes.
 *
 * Three files: configFields.ts is the table of fields (flags, variables, help), configSources.ts
 * reads the raw values from flags, environment and file, and this one is the typed schema and
 * the checks that build it.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { parseTokensFile, tokenProblem, type Scope, type ScopedToken } from './api/auth';
import { CONTEXT_SECRET_BYTES_MIN } from './api/contextToken';
import { parseQuorumSpec, type QuorumSpec } from './core/quorum';
import { DEFAULT_PARTITION_COUNT, DEFAULT_REPLICATION_FACTOR, isValidPartitionCount } from './core/partition';
import { helpText } from './configFields';
import { ConfigError, Reader, readSources } from './configSources';
import { LOG_LEVELS, type LogLevel } from './log';

export { ConfigError, helpText };

export interface Limits {
  readonly maxBucketBytes: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly maxSiblings: number;
  readonly maxInFlightRequests: number;
  readonly maxLockWaiters: number;
  /**
   * Shedding on queueing delay (api/admission.ts): the delay accepted, and how long it may be
   * exceeded before new requests are refused. Undefined: off.
   */
  readonly queueDelay: { readonly targetDelayMs: number; readonly intervalMs: number } | undefined;
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

export type ConfigResult = { readonly kind: 'help'; readonly text: string } | { readonly kind: 'config'; readonly config: NodeConfig };

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Reads flags, environment and file, and returns the validated configuration (or the help text).
 * Throws ConfigError listing every problem found.
 */
export function loadConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ConfigResult {
  const raw = readSources(argv, env);
  if (raw === 'help') return { kind: 'help', text: helpText() };
  const problems: string[] = [];
  const config = build(new Reader(raw, problems));
  if (problems.length > 0) throw new ConfigError(problems);
  return { kind: 'config', config };
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
    limits: readLimits(r),
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

function readLimits(r: Reader): Limits {
  const targetDelayMs = r.integer('queueDelayTargetMs', 0, 0, 60_000);
  const intervalMs = r.integer('queueDelayIntervalMs', 500, 1, 600_000);
  return {
    maxBucketBytes: r.integer('maxBucketBytes', 100, 1, 4096),
    maxKeyBytes: r.integer('maxKeyBytes', 1024, 1, 4096),
    maxValueBytes: r.integer('maxValueBytes', 1024 * 1024, 1, 64 * 1024 * 1024),
    maxSiblings: r.integer('maxSiblings', 100, 1, 10000),
    maxInFlightRequests: r.integer('maxInFlightRequests', 1024, 1, 1_000_000),
    maxLockWaiters: r.integer('maxLockWaiters', 128, 1, 100_000),
    queueDelay: targetDelayMs === 0 ? undefined : { targetDelayMs, intervalMs },
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
