/**
 * Structured logs (pino, one JSON object per line on stdout). Rules: never log the context
 * secret, the auth token, context tokens or stored values. Request bodies are never logged by
 * fastify, and the redaction paths below catch the secrets if a caller logs an object that
 * holds them (for example the configuration at start-up).
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const REDACTED_PATHS = [
  'contextSecret',
  'authToken',
  'peerSecret',
  'clientTokens',
  '*.contextSecret',
  '*.authToken',
  '*.peerSecret',
  '*.clientTokens',
  'req.headers.authorization',
  'req.headers["x-dynamo-context"]',
  'res.headers["x-dynamo-context"]',
];

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly nodeId: string;
  /** Where lines go; stdout by default. Tests pass a stream to capture them. */
  readonly destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { nodeId: options.nodeId, pid: process.pid },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
