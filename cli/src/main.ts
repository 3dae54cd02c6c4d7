#!/usr/bin/env node
/**
 * The `dynamokv` command. Parses the command line, runs the subcommand and sets the exit code:
 * 0 ok, 1 error, 2 usage, 3 get found siblings, 4 get found nothing (see usage.ts).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { UsageError, parseCommandLine, type Command } from './args';
import { runClientCommand, type CliIo } from './commands';
import { runDev } from './dev';
import { devOptionsFrom } from './devPlan';
import { EXIT_ERROR, EXIT_OK, EXIT_USAGE, commandHelp, mainHelp } from './usage';

/** Compiled layout: dist/cli/src/main.js next to dist/node/src/main.js. */
const DEFAULT_NODE_BIN = path.join(__dirname, '..', '..', 'node', 'src', 'main.js');
const STDIN_BYTES_MAX = 64 * 1024 * 1024;

async function readStdin(): Promise<Buffer | undefined> {
  if (process.stdin.isTTY === true) return undefined;
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > STDIN_BYTES_MAX) throw new UsageError(`stdin is larger than ${STDIN_BYTES_MAX} bytes`, 'put');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, bytes);
}

function version(): string {
  // package.json sits at the repository root, three levels above dist/cli/src.
  try {
    const pkg: unknown = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
    if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') return pkg.version;
  } catch {
    // Running from an unusual layout: the version is informative only.
  }
  return 'unknown';
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let command: Command;
  try {
    command = parseCommandLine(argv, process.env);
    switch (command.kind) {
      case 'help':
        io.stdout.write(`${command.topic === undefined ? mainHelp() : commandHelp(command.topic)}\n`);
        return EXIT_OK;
      case 'version':
        io.stdout.write(`dynamokv ${version()}\n`);
        return EXIT_OK;
    }
    if (command.kind === 'dev') return await runDev(devOptionsFrom(command.options, process.cwd(), DEFAULT_NODE_BIN), io);
    return await runClientCommand({ ...command, kind: command.kind }, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`dynamokv: ${error.message}\nRun \`dynamokv ${error.command === undefined ? '' : `${error.command} `}--help\` for usage.\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`dynamokv: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT_ERROR;
  }
}

if (require.main === module) {
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, readStdin }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`dynamokv: ${String(error)}\n`);
      process.exitCode = EXIT_ERROR;
    },
  );
}
