/**
 * The node's settings as a table: for each, its key, kind, flag (with aliases), environment
 * variable, place in the JSON file and help line. config.ts reads and checks the values; this
 * table is what --help prints and what docs/configuration.md must document (config.test.ts).
 */
import { CONTEXT_SECRET_BYTES_MIN } from './api/contextToken';
import { DEFAULT_PARTITION_COUNT, DEFAULT_REPLICATION_FACTOR } from './core/partition';
import { LOG_LEVELS } from './log';

export type Kind = 'string' | 'integer' | 'boolean' | 'list' | 'secret' | 'secret-list';

export interface Field {
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

export const FIELDS: readonly Field[] = [
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
  field('queueDelayTargetMs', 'integer', 'Queueing delay the node accepts, as the event loop\'s delay. When it stays above this for queueDelayIntervalMs, the node lowers how many client requests it holds and refuses key requests above that with 503 OVERLOADED before any work, until the delay is under it again; 0 (the default) turns this off, 50 is a reasonable value.', { group: 'limits' }),
  field('queueDelayIntervalMs', 'integer', 'How long the queueing delay must stay above queueDelayTargetMs before the node sheds load: a shorter burst is only queued (default 500).', { group: 'limits' }),
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
