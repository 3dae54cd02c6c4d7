/**
 * The client-side subcommands (put, get, delete, status, ring, join, leave, abort), run against a
 * DynamoClient. Each returns the process exit code; output goes through the given streams.
 */
import { readFileSync } from 'node:fs';
import { DynamoClient, isDynamoError, type Quorum } from '../../client/src/index';
import { UsageError, integerOption, quorumOption, type Globals, type OptionValues, type RunCommand } from './args';
import { getJson, handoffText, pendingSummary, pendingText, ringText, siblingsText, statusText, looksTextual, type TransferInfo } from './format';
import { abortAnswerOf, abortText, progressReporter, retryWhileChangePending } from './membershipChange';
import { EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_SIBLINGS, type CommandName } from './usage';

export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream;
  /** Reads all of stdin, or undefined when stdin is a terminal (nothing piped). */
  readonly readStdin: () => Promise<Buffer | undefined>;
}

export type ClientCommand = RunCommand<Exclude<CommandName, 'dev'>>;

export function makeClient(globals: Globals): DynamoClient {
  const token = globals.tokenFile === undefined ? globals.token : readOptionFile(globals.tokenFile, 'token-file').toString('utf8').trim();
  const ca = globals.caFile === undefined ? undefined : readOptionFile(globals.caFile, 'ca-file');
  return new DynamoClient({
    endpoints: globals.endpoints,
    // One request per invocation: fetching the ring to route it would cost more than the hop it saves.
    routing: 'any',
    timeoutMs: globals.timeoutMs,
    ...(globals.retries === undefined ? {} : { retries: globals.retries }),
    ...(token === undefined || token === '' ? {} : { token }),
    ...(ca === undefined ? {} : { ca }),
  });
}

/** A file named by an option; unreadable is a usage error (exit 2) naming the file, never its content. */
function readOptionFile(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`--${option}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

export async function runClientCommand(command: ClientCommand, io: CliIo): Promise<number> {
  const client = makeClient(command.globals);
  try {
    return await dispatch(client, command, io);
  } catch (error) {
    if (!isDynamoError(error)) throw error;
    io.stderr.write(`error: ${error.message} (${error.code}${error.status === 0 ? '' : `, HTTP ${error.status}`})\n`);
    if (error.code === 'UNAVAILABLE') io.stderr.write(`hint: is a node running at ${command.globals.endpoints.join(', ')}? \`dynamokv dev\` starts a local cluster.\n`);
    if (error.code === 'NOT_FOUND') io.stderr.write(`hint: ${error.endpoint ?? 'the node'} does not serve this route; is it a dynamokv node of a matching version?\n`);
    return EXIT_ERROR;
  } finally {
    await client.close();
  }
}

async function dispatch(client: DynamoClient, command: ClientCommand, io: CliIo): Promise<number> {
  const [first = '', second = ''] = command.positionals;
  const opts = command.options;
  switch (command.kind) {
    case 'put':
      return put(client, first, second, command.positionals[2], opts, io);
    case 'get':
      return get(client, first, second, opts, io);
    case 'delete': {
      await client.delete(first, second, { ...stringOpt(opts, 'context'), ...writeQuorums(opts, 'delete') });
      io.stdout.write(`deleted ${first}/${second}\n`);
      return EXIT_OK;
    }
    case 'status': {
      const status = await client.status({ endpoint: client.endpoints[0]! });
      io.stdout.write(opts.json === true ? `${JSON.stringify(status.raw)}\n` : statusText(status));
      return EXIT_OK;
    }
    case 'ring': {
      const endpoint = client.endpoints[0]!;
      if (opts.watch === true) return watchRing(client, endpoint, command.globals, io);
      const ring = await client.ring({ endpoint });
      io.stdout.write(opts.json === true ? `${JSON.stringify(ring.raw)}\n` : `${ringText(ring, endpoint)}\n${pendingText(ring.raw.pending)}`);
      return EXIT_OK;
    }
    case 'join': {
      const seed = opts.seed;
      if (typeof seed !== 'string' || seed === '') throw new UsageError('join needs --seed <host:peerPort>', 'join');
      await whilePending(() => client.join(first, seed), opts, 'join', io);
      io.stdout.write(`${first} asked to join the cluster of ${seed}; see \`dynamokv ring -e ${first}\`\n`);
      return EXIT_OK;
    }
    case 'leave': {
      const nodeId = opts['node-id'];
      await whilePending(() => client.leave(first, typeof nodeId === 'string' ? { nodeId } : {}), opts, 'leave', io);
      io.stdout.write(`${typeof nodeId === 'string' ? `member ${nodeId}` : first} asked to leave the ring\n`);
      return EXIT_OK;
    }
    case 'abort': {
      const answer = abortAnswerOf(await client.abort(client.endpoints[0]!));
      io.stdout.write(opts.json === true ? `${JSON.stringify(answer.raw)}\n` : abortText(answer));
      return EXIT_OK;
    }
  }
}

/** Default of --timeout-s: how long join and leave keep retrying while another change streams. */
const CHANGE_TIMEOUT_S_DEFAULT = 600;

/** Runs a join or leave, retrying (with a progress line on stderr) while another change is in progress. */
async function whilePending(attempt: () => Promise<void>, opts: OptionValues, command: 'join' | 'leave', io: CliIo): Promise<void> {
  const timeoutS = integerOption(opts['timeout-s'], 'timeout-s', command, 0) ?? CHANGE_TIMEOUT_S_DEFAULT;
  const progress = progressReporter(io.stderr, command);
  try {
    await retryWhileChangePending(attempt, { timeoutMs: timeoutS * 1000, onWaiting: progress.onWaiting });
  } finally {
    progress.done();
  }
}

/** Refreshes at most this often, and gives up after a day: a bound on the watch loop. */
const WATCH_INTERVAL_MS = 1000;
const WATCH_ROUNDS_MAX = 86_400;


/** `ring --watch`: the ring table and the transfers, redrawn until no transfer is pending. */
async function watchRing(client: DynamoClient, endpoint: string, globals: Globals, io: CliIo): Promise<number> {
  for (let round = 0; round < WATCH_ROUNDS_MAX; round++) {
    const ring = await client.ring({ endpoint });
    // Through the client, so the bearer token and the CA file apply as for every other call.
    const transfers = (await client.handoff({ endpoint })) as unknown as TransferInfo[];
    // On a terminal, redraw in place; into a pipe, append one snapshot per round.
    if (io.stdout.isTTY === true) io.stdout.write('\x1b[2J\x1b[H');
    io.stdout.write(`${ringText(ring, endpoint)}\n${pendingSummary(ring.raw.pending)}${handoffText(transfers)}`);
    if (transfers.length === 0) return EXIT_OK;
    await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS));
  }
  return EXIT_OK;
}

async function put(client: DynamoClient, bucket: string, key: string, valueArg: string | undefined, opts: OptionValues, io: CliIo): Promise<number> {
  let value: Buffer | string;
  if (valueArg === undefined || valueArg === '-') {
    const piped = await io.readStdin();
    if (piped === undefined) throw new UsageError('put needs a value: give it as an argument or pipe it on stdin (with "-")', 'put');
    value = piped;
  } else {
    value = valueArg;
  }
  const result = await client.put(bucket, key, value, {
    ...stringOpt(opts, 'context'),
    ...(typeof opts['content-type'] === 'string' ? { contentType: opts['content-type'] } : {}),
    ...writeQuorums(opts, 'put'),
  });
  io.stdout.write(opts.json === true ? `${JSON.stringify({ context: result.context })}\n` : `stored ${bucket}/${key}\ncontext: ${result.context}\n`);
  return EXIT_OK;
}

async function get(client: DynamoClient, bucket: string, key: string, opts: OptionValues, io: CliIo): Promise<number> {
  const r = quorumOption(opts.r, 'r', 'get');
  const pr = quorumOption(opts.pr, 'pr', 'get');
  const result = await client.get(bucket, key, {
    resolveSiblings: false,
    ...(opts.consistent === true ? { consistent: true } : {}),
    ...(r === undefined ? {} : { r }),
    ...(pr === undefined ? {} : { pr }),
  });
  const exitCode = !result.found ? EXIT_NOT_FOUND : result.values.length > 1 ? EXIT_SIBLINGS : EXIT_OK;
  if (opts.json === true) {
    io.stdout.write(getJson(result));
  } else if (!result.found) {
    io.stderr.write(`not found: ${bucket}/${key}${result.context === undefined ? '' : ` (deleted; context ${result.context})`}\n`);
  } else if (result.values.length > 1) {
    io.stdout.write(siblingsText(bucket, key, result));
  } else {
    const only = result.values[0]!;
    io.stdout.write(only.value);
    // On a terminal, end text with a newline so the prompt does not run into it; piped output
    // stays byte-exact.
    if (io.stdout.isTTY === true && looksTextual(only) && !only.value.toString('utf8').endsWith('\n')) io.stdout.write('\n');
  }
  return exitCode;
}

function stringOpt(opts: OptionValues, name: 'context'): { context?: string } {
  const value = opts[name];
  return typeof value === 'string' ? { context: value } : {};
}

function writeQuorums(opts: OptionValues, command: CommandName): { w?: Quorum; dw?: Quorum; pw?: Quorum } {
  const out: { w?: Quorum; dw?: Quorum; pw?: Quorum } = {};
  for (const name of ['w', 'dw', 'pw'] as const) {
    const value = quorumOption(opts[name], name, command);
    if (value !== undefined) out[name] = value;
  }
  return out;
}
