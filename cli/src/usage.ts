/**
 * The CLI's commands, options and help texts in one table, so parsing and `--help` never disagree.
 */

export interface OptionSpec {
  readonly name: string;
  readonly short?: string;
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  /** Shown in help, e.g. "<url>". */
  readonly value?: string;
  readonly help: string;
}

export interface CommandSpec {
  readonly summary: string;
  readonly positionalsUsage: string;
  readonly positionalsMin: number;
  readonly positionalsMax: number;
  readonly options: readonly OptionSpec[];
  readonly details?: string;
}

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_SIBLINGS = 3;
export const EXIT_NOT_FOUND = 4;

export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { name: 'endpoint', short: 'e', type: 'string', multiple: true, value: '<url>', help: 'node client URL(s), repeat or comma-separate for failover (default $DYNAMOKV_ENDPOINTS or http://127.0.0.1:8080)' },
  { name: 'timeout-ms', type: 'string', value: '<ms>', help: 'per-attempt timeout (default 5000)' },
  { name: 'retries', type: 'string', value: '<n>', help: 'extra attempts on other endpoints after a connection error, timeout or 503' },
  { name: 'token-file', type: 'string', value: '<path>', help: 'file holding the bearer token for nodes with client tokens (default $DYNAMOKV_TOKEN_FILE; $DYNAMOKV_TOKEN holds the token itself)' },
  { name: 'ca-file', type: 'string', value: '<path>', help: 'PEM CA certificate(s) that https endpoints must chain to (default $DYNAMOKV_CA_FILE)' },
  { name: 'help', short: 'h', type: 'boolean', help: 'show help' },
];

const json: OptionSpec = { name: 'json', type: 'boolean', help: 'print JSON instead of text' };
const quorum = (name: string, what: string): OptionSpec => ({ name, type: 'string', value: '<n|one|quorum|all>', help: what });
const writeQuorums: OptionSpec[] = [
  quorum('w', 'replicas that must acknowledge the write'),
  quorum('dw', 'replicas that must have it on disk (fsynced)'),
  quorum('pw', 'primary replicas that must acknowledge'),
];

const changeTimeout: OptionSpec = { name: 'timeout-s', type: 'string', value: '<seconds>', help: 'how long to keep retrying while another membership change is in progress; 0: no retry (default 600)' };
const CHANGE_DETAILS =
  'One membership change runs at a time. While another is in progress the node refuses this one;\n' +
  'the command then retries every 2 s, showing the progress of the change it waits for, until\n' +
  '--timeout-s has passed. `dynamokv ring` shows the pending change, `dynamokv abort` drops it.';

export const COMMANDS = {
  put: {
    summary: 'store a value',
    positionalsUsage: '<bucket> <key> [value|-]',
    positionalsMin: 2,
    positionalsMax: 3,
    options: [
      { name: 'content-type', short: 't', type: 'string', value: '<type>', help: 'content type (default text/plain; charset=utf-8 for an argument, application/octet-stream for stdin)' },
      { name: 'context', short: 'c', type: 'string', value: '<ctx>', help: 'context from an earlier get; replaces exactly the values that get saw (resolves siblings)' },
      ...writeQuorums,
      json,
    ],
    details: 'With no value or "-", the value is read from stdin. Prints the new context.',
  },
  get: {
    summary: 'read a value (shows siblings)',
    positionalsUsage: '<bucket> <key>',
    positionalsMin: 2,
    positionalsMax: 2,
    options: [
      { name: 'consistent', type: 'boolean', help: 'strict quorum of primary replicas; fails rather than answer stale' },
      quorum('r', 'replicas to wait for'),
      quorum('pr', 'primary replicas to wait for'),
      json,
    ],
    details:
      'One value is printed as is (raw bytes). Siblings (concurrent values) are printed numbered with\n' +
      'their content type and time, followed by the context to pass to `put --context` to resolve them;\n' +
      'the exit code is then 3. A missing key prints a message to stderr and exits 4.',
  },
  delete: {
    summary: 'delete a key',
    positionalsUsage: '<bucket> <key>',
    positionalsMin: 2,
    positionalsMax: 2,
    options: [{ name: 'context', short: 'c', type: 'string', value: '<ctx>', help: 'context to delete (default: read the current one first)' }, ...writeQuorums],
  },
  status: { summary: "show a node's status", positionalsUsage: '', positionalsMin: 0, positionalsMax: 0, options: [json] },
  ring: {
    summary: 'show ring members, state, liveness and ownership',
    positionalsUsage: '',
    positionalsMin: 0,
    positionalsMax: 0,
    options: [json, { name: 'watch', type: 'boolean', help: 'refresh every second, with a progress bar per partition transfer, until no transfer is pending' }],
  },
  join: {
    summary: 'make a node join a cluster',
    positionalsUsage: '<node-endpoint>',
    positionalsMin: 1,
    positionalsMax: 1,
    options: [{ name: 'seed', type: 'string', value: '<host:peerPort>', help: "peer address of any member of the cluster to join (required)" }, changeTimeout],
    details: `${CHANGE_DETAILS}\n\nExample: dynamokv join http://127.0.0.1:8081 --seed 127.0.0.1:9080`,
  },
  leave: {
    summary: 'make a node leave its cluster',
    positionalsUsage: '<node-endpoint>',
    positionalsMin: 1,
    positionalsMax: 1,
    options: [{ name: 'node-id', type: 'string', value: '<id>', help: 'remove this member instead of the node itself' }, changeTimeout],
    details: CHANGE_DETAILS,
  },
  abort: {
    summary: 'drop the pending membership change (a join or leave that cannot finish)',
    positionalsUsage: '',
    positionalsMin: 0,
    positionalsMax: 0,
    options: [json],
    details:
      'Asks the cluster (through the node given with -e) to drop the join or leave in progress, e.g. when\n' +
      'the joining node or a sender died for good. The committed plan stays in force; a joining node\n' +
      'becomes "left" (it joins again only with an empty data directory), a leaving node is a normal\n' +
      'member again. Nothing is lost: the current owners kept every write. With no change pending\n' +
      'it changes nothing.',
  },
  dev: {
    summary: 'run a local cluster on this machine (ctrl-c stops it)',
    positionalsUsage: '',
    positionalsMin: 0,
    positionalsMax: 0,
    options: [
      { name: 'nodes', short: 'n', type: 'string', value: '<count>', help: 'number of nodes (default 3)' },
      { name: 'data-dir', short: 'd', type: 'string', value: '<dir>', help: 'data folder, one sub-folder per node (default ./data)' },
      { name: 'port-base', type: 'string', value: '<port>', help: 'client port of the first node; node i uses port-base+i-1 (default 8080)' },
      { name: 'peer-port-base', type: 'string', value: '<port>', help: 'peer port of the first node (default port-base+1000)' },
      { name: 'partitions', short: 'q', type: 'string', value: '<Q>', help: 'partition count, a power of two (default: the node\'s)' },
      { name: 'replication', type: 'string', value: '<N>', help: 'replicas per key (default: min(3, nodes))' },
      { name: 'r', type: 'string', value: '<R>', help: 'default read quorum' },
      { name: 'w', type: 'string', value: '<W>', help: 'default write quorum' },
      { name: 'quiet', type: 'boolean', help: 'write node logs to <data-dir>/logs/<id>.log instead of stdout' },
      { name: 'node-bin', type: 'string', value: '<file>', help: 'node entry script (default: the built dist/node/src/main.js)' },
      { name: 'ready-timeout-ms', type: 'string', value: '<ms>', help: 'how long to wait for each node to be ready (default 30000)' },
    ],
    details: 'Node i gets id n<i>. Nodes 2..n are joined to node 1 once the node supports clusters.',
  },
} satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

const EXIT_CODES = `Exit codes:
  0  success
  1  error (server error, node unreachable, ...)
  2  usage error
  3  get found siblings (printed, with the context to resolve them)
  4  get: key not found`;

function optionLines(options: readonly OptionSpec[]): string[] {
  const rows = options.map((o) => [`${o.short === undefined ? '    ' : `-${o.short}, `}--${o.name}${o.value === undefined ? '' : ` ${o.value}`}`, o.help] as const);
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`);
}

export function mainHelp(): string {
  const names = Object.keys(COMMANDS) as CommandName[];
  const width = Math.max(...names.map((n) => n.length));
  return [
    'dynamokv: command-line client of the dynamokv key-value store',
    '',
    'Usage: dynamokv [global options] <command> [arguments] [options]',
    '',
    'Commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n].summary}`),
    `  ${'help'.padEnd(width)}  show help of a command`,
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    EXIT_CODES,
    '',
    'Examples:',
    '  dynamokv dev                          # start a 3-node cluster on ports 8080-8082',
    '  dynamokv put users alice \'{"age":31}\' -t application/json',
    '  dynamokv get users alice',
    '  dynamokv ring',
    '',
    'Run `dynamokv <command> --help` for the options of a command.',
  ].join('\n');
}

export function commandHelp(name: CommandName): string {
  const spec: CommandSpec = COMMANDS[name];
  const lines = [`dynamokv ${name}: ${spec.summary}`, '', `Usage: dynamokv ${name}${spec.positionalsUsage === '' ? '' : ` ${spec.positionalsUsage}`} [options]`];
  if (spec.details !== undefined) lines.push('', spec.details);
  if (spec.options.length > 0) lines.push('', 'Options:', ...optionLines(spec.options));
  lines.push('', 'Global options:', ...optionLines(GLOBAL_OPTIONS), '', EXIT_CODES);
  return lines.join('\n');
}
