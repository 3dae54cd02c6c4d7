/**
 * Configuration: defaults, the precedence flag > env > file > default, and start-up errors that
 * name the field, the value and its source (without ever echoing a secret).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, DEVELOPMENT_CONTEXT_SECRET, describeConfig, helpText, loadConfig, type NodeConfig } from './config';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dynamokv-config-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function configOf(argv: string[], env: Record<string, string> = {}): NodeConfig {
  const result = loadConfig(argv, env);
  if (result.kind !== 'config') throw new Error('expected a configuration');
  return result.config;
}

function problemsOf(argv: string[], env: Record<string, string> = {}): string[] {
  try {
    loadConfig(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a ConfigError');
}

function writeFile(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

test('defaults: only the node id is required', () => {
  expect(configOf(['--node-id', 'n1'])).toEqual({
    nodeId: 'n1',
    host: '127.0.0.1',
    advertiseHost: '127.0.0.1',
    port: 8080,
    peerPort: 9080,
    dataDir: resolve('data/n1'),
    partitionCount: 256,
    replicationFactor: 3,
    seeds: [],
    requireAdmission: false,
    quorums: { r: 'quorum', w: 'quorum', dw: 0 },
    gossipIntervalMs: 1000,
    replicaTimeoutMs: 2000,
    peerSecret: undefined,
    limits: {
      maxBucketBytes: 100,
      maxKeyBytes: 1024,
      maxValueBytes: 1048576,
      maxSiblings: 100,
      maxInFlightRequests: 1024,
      maxLockWaiters: 128,
      queueDelay: undefined,
    },
    syncWrites: false,
    contextSecret: DEVELOPMENT_CONTEXT_SECRET,
    contextSecretIsDefault: true,
    authToken: undefined,
    clientTokens: [],
    tls: undefined,
    logLevel: 'info',
    shutdownTimeoutMs: 10000,
    antiEntropy: { intervalMs: 10000, keysPerExchangeMax: 1000, bytesPerExchangeMax: 16777216 },
    handoff: { enabled: true, bytesPerSecondMax: 41943040, concurrencyMax: 2 },
    tombstones: { graceMs: 3_600_000, reapIntervalMs: 10_000, keysPerRoundMax: 1000 },
  });
});

test('shedding on queueing delay: off by default, settings from flags and file, and a target of 0 turns it off', () => {
  const flags = configOf(['--node-id', 'n1', '--queue-delay-target-ms', '25', '--queue-delay-interval-ms', '250']);
  expect(flags.limits.queueDelay).toEqual({ targetDelayMs: 25, intervalMs: 250 });
  const file = writeFile('queue-delay.json', { nodeId: 'n1', limits: { queueDelayTargetMs: 5 } });
  expect(configOf(['--config', file]).limits.queueDelay).toEqual({ targetDelayMs: 5, intervalMs: 500 });
  expect(configOf(['--node-id', 'n1'], { DYNAMOKV_QUEUE_DELAY_TARGET_MS: '0' }).limits.queueDelay).toBeUndefined();
  expect(problemsOf(['--node-id', 'n1', '--queue-delay-interval-ms', '0'])).toEqual([
    'queueDelayIntervalMs: must be an integer from 1 to 600000 (got "0" from --queue-delay-interval-ms)',
  ]);
});

test('advertise host: defaults to host, and a wildcard host needs one others can reach', () => {
  expect(configOf(['--node-id', 'n1', '--host', '127.0.0.7']).advertiseHost).toBe('127.0.0.7');
  expect(configOf(['--node-id', 'n1', '--host', '0.0.0.0', '--advertise-host', '10.1.2.3']).advertiseHost).toBe('10.1.2.3');
  expect(() => configOf(['--node-id', 'n1', '--host', '0.0.0.0'])).toThrow(/advertiseHost: is required when host is 0.0.0.0/);
  expect(() => configOf(['--node-id', 'n1', '--advertise-host', '::'])).toThrow(/advertiseHost: must be an address others can reach/);
  expect(configOf(['--node-id', 'n1', '--require-admission']).requireAdmission).toBe(true);
  expect(configOf(['--node-id', 'n1'], { DYNAMOKV_REQUIRE_ADMISSION: 'true' }).requireAdmission).toBe(true);
});

test('handoff settings: a throttle in bytes per second and one or two transfers at a time', () => {
  expect(configOf(['--node-id', 'n1'], { DYNAMOKV_HANDOFF: 'false' }).handoff.enabled).toBe(false);
  expect(configOf(['--node-id', 'n1', '--handoff-bytes-per-second-max', '65536']).handoff.bytesPerSecondMax).toBe(65536);
  expect(() => configOf(['--node-id', 'n1', '--handoff-concurrency-max', '3'])).toThrow(/handoffConcurrencyMax/);
});

test('anti-entropy settings: 0 disables the loop, and negative intervals are refused', () => {
  expect(configOf(['--node-id', 'n1', '--anti-entropy-interval-ms', '0']).antiEntropy.intervalMs).toBe(0);
  expect(configOf(['--node-id', 'n1'], { DYNAMOKV_ANTI_ENTROPY_KEYS_PER_EXCHANGE_MAX: '50' }).antiEntropy.keysPerExchangeMax).toBe(50);
  expect(() => configOf(['--node-id', 'n1', '--anti-entropy-interval-ms=-1'])).toThrow(/antiEntropyIntervalMs: must be an integer from 0/);
});

test('quorum defaults accept integers and one/quorum/all, and refuse values above N', () => {
  expect(configOf(['--node-id', 'n1', '--r', 'one', '--w', 'all', '--dw', '1']).quorums).toEqual({ r: 'one', w: 'all', dw: 1 });
  expect(() => configOf(['--node-id', 'n1', '--w', 'most'])).toThrow(/writeQuorum: must be an integer or one, quorum, all/);
  expect(() => configOf(['--node-id', 'n1', '--replication', '3', '--r', '4'])).toThrow(/readQuorum: must not exceed the replication factor 3/);
});

test('precedence: flag over environment over file over default, field by field', () => {
  const file = writeFile('precedence.json', { nodeId: 'from-file', port: 1000, host: '127.0.0.2', limits: { maxKeyBytes: 10, maxSiblings: 7 } });
  const env = { DYNAMOKV_PORT: '2000', DYNAMOKV_MAX_KEY_BYTES: '20' };
  const config = configOf(['--config', file, '--port', '3000'], env);
  expect([config.nodeId, config.port, config.host, config.limits.maxKeyBytes, config.limits.maxSiblings]).toEqual(['from-file', 3000, '127.0.0.2', 20, 7]);
  expect(configOf(['--config', file], env).port).toBe(2000);
  expect(configOf(['--config', file]).port).toBe(1000);
  expect(configOf([], { DYNAMOKV_CONFIG: file }).nodeId).toBe('from-file');
});

test('peerPort and dataDir defaults follow the port and node id wherever those came from', () => {
  const config = configOf([], { DYNAMOKV_NODE_ID: 'east-1', DYNAMOKV_PORT: '8181' });
  expect([config.peerPort, config.dataDir]).toEqual([9181, resolve('data/east-1')]);
  expect(configOf(['--node-id', 'a', '--port', '8181', '--peer-port', '7000']).peerPort).toBe(7000);
});

test('flags the local cluster launcher passes are accepted, including aliases', () => {
  const config = configOf(['--node-id', 'n2', '--host', '127.0.0.1', '--port', '8081', '--peer-port', '9081', '--data-dir', '/tmp/x/n2', '--partitions', '64', '--replication', '2', '--seeds', '127.0.0.1:9080, 127.0.0.1:9081']);
  expect([config.partitionCount, config.replicationFactor, config.seeds, config.dataDir]).toEqual([64, 2, ['127.0.0.1:9080', '127.0.0.1:9081'], '/tmp/x/n2']);
  expect(configOf(['--node-id', 'n', '--partition-count', '32', '--replication-factor', '5'])).toMatchObject({ partitionCount: 32, replicationFactor: 5 });
});

test('booleans: --sync-writes, --no-sync-writes, env true/false, JSON true', () => {
  expect(configOf(['--node-id', 'n', '--sync-writes']).syncWrites).toBe(true);
  expect(configOf(['--node-id', 'n', '--no-sync-writes'], { DYNAMOKV_SYNC_WRITES: 'true' }).syncWrites).toBe(false);
  expect(configOf(['--node-id', 'n'], { DYNAMOKV_SYNC_WRITES: 'true' }).syncWrites).toBe(true);
  expect(configOf(['--config', writeFile('sync.json', { nodeId: 'n', syncWrites: true })]).syncWrites).toBe(true);
  expect(problemsOf(['--node-id', 'n'], { DYNAMOKV_SYNC_WRITES: 'yes' })[0]).toMatch(/^syncWrites: must be true or false \(got "yes" from DYNAMOKV_SYNC_WRITES\)$/);
});

test('secrets come from the environment or the file, never from flags', () => {
  const config = configOf(['--node-id', 'n'], { DYNAMOKV_CONTEXT_SECRET: 'a-production-secret-value', DYNAMOKV_AUTH_TOKEN: 'token-of-sixteen-chars' });
  expect([config.contextSecret, config.contextSecretIsDefault, config.authToken]).toEqual(['a-production-secret-value', false, 'token-of-sixteen-chars']);
  expect(describeConfig(config)).toMatchObject({ contextSecret: '[redacted]', authToken: '[redacted]' });
  expect(problemsOf(['--node-id', 'n', '--context-secret', 'x'.repeat(20)])[0]).toMatch(/context-secret/);
});

test('client tokens: every source with its scope, redacted in problems and in the logged configuration', () => {
  const file = writeFile('tokens.txt', '# scoped tokens\nread  file-read-token-0123\n\nadmin file-admin-token-0123\n');
  const config = configOf(['--node-id', 'n', '--tokens-file', file], {
    DYNAMOKV_AUTH_TOKEN: 'the-old-admin-token',
    DYNAMOKV_READ_TOKENS: 'read-token-number-1, read-token-number-2',
    DYNAMOKV_WRITE_TOKENS: 'write-token-number-1',
  });
  expect(config.clientTokens).toEqual([
    { scope: 'admin', token: 'the-old-admin-token' },
    { scope: 'read', token: 'read-token-number-1' },
    { scope: 'read', token: 'read-token-number-2' },
    { scope: 'write', token: 'write-token-number-1' },
    { scope: 'read', token: 'file-read-token-0123' },
    { scope: 'admin', token: 'file-admin-token-0123' },
  ]);
  const logged = JSON.stringify(describeConfig(config));
  expect(logged).toContain('"clientTokens":{"admin":2,"read":3,"write":1}');
  expect(logged).not.toMatch(/token-number|file-read|file-admin|old-admin/);
  expect(problemsOf(['--node-id', 'n'], { DYNAMOKV_READ_TOKENS: 'short' })).toEqual(['readTokens: a token must be 16 to 4096 characters long (got "[redacted]" from DYNAMOKV_READ_TOKENS)']);
  const bad = writeFile('bad-tokens.txt', 'read a-good-enough-token-1\nroot a-secret-token-in-a-typo\nwrite short\n');
  const problems = problemsOf(['--node-id', 'n', '--tokens-file', bad]);
  expect(problems).toEqual([
    `tokensFile: line 2: unknown scope (use read, write, admin) (got "${bad}" from --tokens-file)`,
    `tokensFile: line 3: a token must be 16 to 4096 characters long (got "${bad}" from --tokens-file)`,
  ]);
  expect(problemsOf(['--node-id', 'n', '--tokens-file', join(dir, 'absent.txt')])[0]).toMatch(/^tokensFile: cannot be read \(ENOENT\)/);
});

test('TLS: both files or neither; peer TLS needs them', () => {
  expect(configOf(['--node-id', 'n', '--tls-cert-file', 'c.pem', '--tls-key-file', 'k.pem', '--peer-tls']).tls).toEqual({
    certFile: resolve('c.pem'),
    keyFile: resolve('k.pem'),
    peer: true,
    peerCaFile: undefined,
  });
  expect(problemsOf(['--node-id', 'n', '--tls-cert-file', 'c.pem'])).toEqual(['tlsCertFile, tlsKeyFile: set both or neither']);
  expect(problemsOf(['--node-id', 'n', '--peer-tls'])[0]).toMatch(/^peerTls: needs tlsCertFile and tlsKeyFile/);
});

test('a bad value is named with the field, the value and its source', () => {
  expect(problemsOf(['--node-id', 'n', '--port', '70000'])).toEqual(['port: must be an integer from 1 to 65535 (got "70000" from --port)']);
  expect(problemsOf(['--node-id', 'n'], { DYNAMOKV_PARTITION_COUNT: '100' })).toEqual(['partitionCount: must be a power of two (got "100" from DYNAMOKV_PARTITION_COUNT)']);
  const file = writeFile('bad-limits.json', { nodeId: 'n', limits: { maxValueBytes: 'big' } });
  expect(problemsOf(['--config', file])).toEqual([`maxValueBytes: must be an integer from 1 to 67108864 (got "big" from ${file}: limits.maxValueBytes)`]);
  expect(problemsOf(['--node-id', 'bad id!'])[0]).toMatch(/^nodeId: must be 1-63 letters/);
  expect(problemsOf(['--node-id', 'n', '--seeds', 'localhost'])[0]).toMatch(/^seeds: "localhost" is not host:port/);
  expect(problemsOf(['--node-id', 'n', '--log-level', 'loud'])[0]).toMatch(/^logLevel: must be one of fatal, error/);
  expect(problemsOf(['--node-id', 'n', '--port', '9000', '--peer-port', '9000'])[0]).toMatch(/^peerPort: must differ from port 9000/);
  expect(problemsOf(['--node-id', 'n', '--port', '65000'])[0]).toMatch(/^peerPort: the default port \+ 1000 = 66000 is above 65535/);
});

test('every problem is reported at once', () => {
  expect(problemsOf(['--port', '0', '--max-siblings=-1'])).toEqual([
    'nodeId: required (--node-id, DYNAMOKV_NODE_ID or "nodeId" in the config file)',
    'port: must be an integer from 1 to 65535 (got "0" from --port)',
    'maxSiblings: must be an integer from 1 to 10000 (got "-1" from --max-siblings)',
  ]);
});

test('a short secret is refused without echoing it', () => {
  const problems = problemsOf(['--node-id', 'n'], { DYNAMOKV_CONTEXT_SECRET: 'tiny-secret' });
  expect(problems).toEqual(['contextSecret: must be at least 16 bytes (got "[redacted]" from DYNAMOKV_CONTEXT_SECRET)']);
});

test('unknown flags, unknown file fields and unreadable files are errors', () => {
  expect(problemsOf(['--node-id', 'n', '--prot', '1'])[0]).toMatch(/Unknown option '--prot'/);
  expect(problemsOf(['--node-id', 'n', 'positional'])[0]).toMatch(/positional/);
  expect(problemsOf(['--config', writeFile('typo.json', { nodeId: 'n', prot: 1, limits: { maxKeys: 1 } })])).toEqual([
    `config file ${join(dir, 'typo.json')}: unknown field "prot"`,
    `config file ${join(dir, 'typo.json')}: unknown field "limits.maxKeys"`,
  ]);
  expect(problemsOf(['--config', writeFile('broken.json', '{"nodeId": ')])[0]).toMatch(/broken\.json: .*JSON/);
  expect(problemsOf(['--config', join(dir, 'missing.json')])[0]).toMatch(/missing\.json: ENOENT/);
  expect(problemsOf(['--config', writeFile('array.json', [1])])[0]).toMatch(/must hold a JSON object/);
});

test('--help returns the usage text with every flag and environment variable', () => {
  const result = loadConfig(['--help'], {});
  expect(result.kind).toBe('help');
  const text = result.kind === 'help' ? result.text : '';
  for (const expected of ['--node-id', '--port', '--peer-port', '--data-dir', '--partitions', '--replication', '--seeds', '--max-value-bytes', '--sync-writes', 'DYNAMOKV_CONTEXT_SECRET', 'Exit codes']) {
    expect(text).toContain(expected);
  }
});

test('docs/configuration.md documents every flag the node accepts', () => {
  const documented = readFileSync(join(__dirname, '..', '..', 'docs', 'configuration.md'), 'utf8');
  const flags = [...helpText().matchAll(/^ {2}(--[a-z0-9-]+)/gm)].map((m) => m[1]!).filter((flag) => flag !== '--help');
  expect(flags.length).toBeGreaterThan(20);
  expect(flags.filter((flag) => !documented.includes(`\`${flag}`))).toEqual([]);
});
