/**
 * Command-line parsing: each test feeds an argv (and environment) to parseCommandLine and checks
 * the command it yields, or that a UsageError (exit code 2 in main) names the problem.
 */
import { UsageError, parseCommandLine, quorumOption } from './args';
import { COMMANDS, commandHelp, mainHelp, type CommandName } from './usage';

const noEnv = {};

function run(argv: string[], env: Record<string, string | undefined> = noEnv) {
  const command = parseCommandLine(argv, env);
  if (command.kind === 'help' || command.kind === 'version') throw new Error(`expected a run command, got ${command.kind}`);
  return command;
}

function usageError(argv: string[]): UsageError {
  try {
    parseCommandLine(argv, noEnv);
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
  throw new Error(`no usage error for ${argv.join(' ')}`);
}

test('put takes bucket, key, value and its options; the endpoint defaults to 127.0.0.1:8080', () => {
  const command = run(['put', 'users', 'alice', 'hello', '--content-type', 'text/x', '-c', 'CTX', '--w', '2']);
  expect(command).toMatchObject({ kind: 'put', positionals: ['users', 'alice', 'hello'], options: { 'content-type': 'text/x', context: 'CTX', w: '2' } });
  expect(command.globals).toEqual({ endpoints: ['http://127.0.0.1:8080'], timeoutMs: 5000, retries: undefined });
});

test('global options may come before or after the command, repeated or comma-separated', () => {
  const before = run(['-e', 'http://a:1', 'get', 'b', 'k']);
  const after = run(['get', 'b', 'k', '--endpoint', 'http://a:1,http://b:2', '-e', 'http://c:3', '--timeout-ms', '900']);
  expect(before.globals.endpoints).toEqual(['http://a:1']);
  expect(after.globals.endpoints).toEqual(['http://a:1', 'http://b:2', 'http://c:3']);
  expect(after.globals.timeoutMs).toBe(900);
});

test('DYNAMOKV_ENDPOINTS is used when no --endpoint is given, and --endpoint wins over it', () => {
  const env = { DYNAMOKV_ENDPOINTS: 'http://x:1, http://y:2' };
  expect(run(['status'], env).globals.endpoints).toEqual(['http://x:1', 'http://y:2']);
  expect(run(['status', '-e', 'http://z:3'], env).globals.endpoints).toEqual(['http://z:3']);
});

test('"-" as the put value means stdin and is kept as a positional', () => {
  expect(run(['put', 'b', 'k', '-']).positionals).toEqual(['b', 'k', '-']);
});

test('a value starting with a dash can follow "--"', () => {
  expect(run(['put', 'b', 'k', '--', '-5']).positionals).toEqual(['b', 'k', '-5']);
});

test('usage errors: missing or unknown command, unknown option, wrong argument counts, bad integers', () => {
  expect(usageError(['--timeout-ms', '5']).message).toMatch(/missing command/);
  expect(usageError(['frobnicate']).message).toMatch(/unknown command "frobnicate"/);
  expect(usageError(['get', 'b', 'k', '--nope']).command).toBe('get');
  expect(usageError(['get', 'b']).message).toMatch(/get needs <bucket> <key>/);
  expect(usageError(['delete', 'b', 'k', 'extra']).message).toMatch(/at most 2/);
  expect(usageError(['get', 'b', 'k', '--timeout-ms', 'soon']).message).toMatch(/--timeout-ms must be an integer/);
});

test('--help anywhere gives the help of the command, no arguments gives the main help', () => {
  expect(parseCommandLine(['get', '--help'], noEnv)).toEqual({ kind: 'help', topic: 'get' });
  expect(parseCommandLine(['help', 'ring'], noEnv)).toEqual({ kind: 'help', topic: 'ring' });
  expect(parseCommandLine([], noEnv)).toEqual({ kind: 'help', topic: undefined });
  expect(parseCommandLine(['-h'], noEnv)).toEqual({ kind: 'help', topic: undefined });
});

test('quorum options accept positive integers and one/quorum/all only', () => {
  expect(quorumOption('2', 'w', 'put')).toBe(2);
  expect(quorumOption('quorum', 'w', 'put')).toBe('quorum');
  expect(quorumOption(undefined, 'w', 'put')).toBeUndefined();
  expect(() => quorumOption('0', 'w', 'put')).toThrow(UsageError);
  expect(() => quorumOption('most', 'w', 'put')).toThrow(/one\/quorum\/all/);
});

test('every command has help that documents the exit codes, and the main help lists every command', () => {
  const main = mainHelp();
  for (const name of Object.keys(COMMANDS) as CommandName[]) {
    expect(main).toContain(`  ${name} `);
    const help = commandHelp(name);
    expect(help).toContain(`Usage: dynamokv ${name}`);
    expect(help).toMatch(/4 +get: key not found/);
  }
});

test('credentials: a token file or DYNAMOKV_TOKEN (never a flag with the token), and a CA file for https', () => {
  const fromFlags = run(['get', 'b', 'k', '--token-file', '/run/token', '--ca-file', '/etc/ca.pem', '-e', 'https://n1:8443'], { DYNAMOKV_TOKEN: 'ignored-when-a-file-is-named' });
  expect(fromFlags.globals).toMatchObject({ tokenFile: '/run/token', caFile: '/etc/ca.pem', endpoints: ['https://n1:8443'] });
  expect(fromFlags.globals.token).toBeUndefined();
  const fromEnv = run(['get', 'b', 'k'], { DYNAMOKV_TOKEN: ' env-token-0123456789 ', DYNAMOKV_CA_FILE: '/ca.pem' });
  expect(fromEnv.globals).toMatchObject({ token: 'env-token-0123456789', caFile: '/ca.pem' });
  expect(run(['get', 'b', 'k'], { DYNAMOKV_TOKEN_FILE: '/t' }).globals.tokenFile).toBe('/t');
  expect(usageError(['get', 'b', 'k', '--token', 'x']).message).toMatch(/--token/);
});

test('abort takes no arguments; join and leave take --timeout-s for their retries', () => {
  expect(run(['abort', '-e', 'http://n1:8080'])).toMatchObject({ kind: 'abort', positionals: [], globals: { endpoints: ['http://n1:8080'] } });
  expect(usageError(['abort', 'extra']).message).toMatch(/at most 0 arguments/);
  expect(run(['join', 'http://n2:8080', '--seed', 'n1:9080', '--timeout-s', '30']).options).toMatchObject({ seed: 'n1:9080', 'timeout-s': '30' });
  expect(run(['leave', 'http://n2:8080', '--timeout-s', '0']).options['timeout-s']).toBe('0');
});
