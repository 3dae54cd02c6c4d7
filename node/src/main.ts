/**
 * The node's entry point: read the configuration, start, and stop gracefully on SIGTERM/SIGINT.
 * Exit codes: 0 clean shutdown, 1 runtime failure (or a shutdown that had to cut requests),
 * 2 invalid configuration.
 */
import { isIP } from 'node:net';
import { ConfigError, describeConfig, loadConfig, type NodeConfig } from './config';
import { createLogger, type Logger } from './log';
import { startNode, type RunningNode } from './server';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_BAD_CONFIG = 2;

async function main(): Promise<void> {
  const config = readConfigOrExit();
  const logger = createLogger({ level: config.logLevel, nodeId: config.nodeId });
  logger.info({ config: describeConfig(config) }, 'starting');
  if (config.contextSecretIsDefault && !isLoopback(config.host)) {
    logger.warn('contextSecret is not set: using the shared development secret. Set DYNAMOKV_CONTEXT_SECRET on every node of a real cluster.');
  }
  let node: RunningNode;
  try {
    node = await startNode(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'start-up failed');
    process.exit(EXIT_FAILURE);
  }
  logger.info({ address: node.url, dataDir: config.dataDir }, 'listening');
  handleSignals(node, logger);
}

function readConfigOrExit(): NodeConfig {
  try {
    const result = loadConfig(process.argv.slice(2), process.env);
    if (result.kind === 'config') return result.config;
    process.stdout.write(`${result.text}\n`);
    process.exit(EXIT_OK);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`dynamokv node: ${error.message}\n`);
    process.exit(EXIT_BAD_CONFIG);
  }
}

function handleSignals(node: RunningNode, logger: Logger): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal means "now": the operator has given up waiting.
      logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(EXIT_FAILURE);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    node.close().then(
      (clean) => {
        logger.info({ clean }, 'stopped');
        process.exit(clean ? EXIT_OK : EXIT_FAILURE);
      },
      (error: unknown) => {
        logger.fatal({ err: error }, 'shutdown failed');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
}

main().catch((error: unknown) => {
  process.stderr.write(`dynamokv node: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(EXIT_FAILURE);
});
