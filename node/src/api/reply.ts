/** Small helpers shared by the app and its route modules. */
import type { FastifyReply } from 'fastify';
import { DynamoError, OVERLOADED_RETRY_AFTER_SECONDS } from './errors';

/** A path and the methods it serves; every other common method answers 405 (app.ts). */
export interface PathMethods {
  readonly url: string;
  readonly methods: readonly string[];
}

export const CONTEXT_HEADER = 'x-dynamo-context';
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Sends a catalogue error: its status, its headers, and `{"error": {"code", "message"}}`. */
export function sendError(reply: FastifyReply, error: DynamoError): FastifyReply {
  reply.code(error.status).headers(error.headers);
  if (error.code === 'OVERLOADED') reply.header('retry-after', String(OVERLOADED_RETRY_AFTER_SECONDS));
  return reply.type(JSON_CONTENT_TYPE).send(error.body());
}

/**
 * Parses a raw request body (every body is a Buffer, see app.ts) as JSON. The result is
 * `unknown`: callers check its shape before use.
 */
export function jsonBody(body: unknown): unknown {
  if (!(body instanceof Uint8Array) || body.length === 0) throw new DynamoError('REQUEST_INVALID', 'A JSON body is required.');
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')) as unknown;
  } catch {
    throw new DynamoError('REQUEST_INVALID', 'The body is not valid JSON.');
  }
}
