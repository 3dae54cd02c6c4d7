/**
 * The client's public value types, and the decoders that turn server answers into them.
 * Decoders check every field they read, so no unchecked JSON leaks into callers.
 */
import { DynamoError } from './errors';

/** A quorum size: an integer, or one of the symbolic sizes the node understands. */
export type Quorum = number | 'one' | 'quorum' | 'all';

/** One version of a value. A key with concurrent writes has several (siblings). */
export interface Sibling {
  readonly value: Buffer;
  readonly contentType: string;
  readonly lastModified: Date;
}

export interface GetResult {
  readonly found: boolean;
  /** Empty when not found; one entry normally; several when there are siblings. */
  readonly values: Sibling[];
  /**
   * The opaque causal context to pass to the next put or delete of this key. Present whenever
   * the key has any history, including a deleted key (its tombstone), so a later put supersedes it.
   */
  readonly context: string | undefined;
}

export interface PutResult {
  readonly context: string;
  /** With `returnBody: true`: the state after the write, as a get would answer. */
  readonly body?: GetResult;
}

/** What a sibling resolver returns: the bytes (or text) to store, optionally with a content type. */
export type Resolved = Buffer | string | { readonly value: Buffer | string; readonly contentType?: string };

/** Called with the current values of a key (possibly none or one) to choose the value to store. */
export type SiblingResolver = (siblings: readonly Sibling[], key: { readonly bucket: string; readonly key: string }) => Resolved | Promise<Resolved>;

export const CONTEXT_HEADER = 'x-dynamo-context';
export const DEFAULT_BINARY_TYPE = 'application/octet-stream';
export const DEFAULT_TEXT_TYPE = 'text/plain; charset=utf-8';

/** Splits a resolver's answer into bytes and content type (strings default to UTF-8 text). */
export function normaliseResolved(resolved: Resolved, fallbackContentType?: string): { value: Buffer; contentType: string } {
  if (typeof resolved === 'string') return { value: Buffer.from(resolved, 'utf8'), contentType: fallbackContentType ?? DEFAULT_TEXT_TYPE };
  if (Buffer.isBuffer(resolved)) return { value: resolved, contentType: fallbackContentType ?? DEFAULT_BINARY_TYPE };
  const inner = normaliseResolved(resolved.value, fallbackContentType);
  return { value: inner.value, contentType: resolved.contentType ?? inner.contentType };
}

function protocolError(endpoint: string, what: string): DynamoError {
  return new DynamoError('PROTOCOL_ERROR', 0, `unexpected answer from ${endpoint}: ${what}`, { endpoint });
}

function parseJson(text: string, endpoint: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw protocolError(endpoint, 'the body is not JSON');
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Decodes the 300 Multiple Choices body: `{"context", "siblings": [{value(base64), contentType, lastModified}]}`. */
export function decodeSiblingsBody(text: string, endpoint: string): { context: string; siblings: Sibling[] } {
  const body = parseJson(text, endpoint);
  if (!isRecord(body)) throw protocolError(endpoint, 'the siblings body is not an object');
  const { context, siblings } = body;
  if (typeof context !== 'string') throw protocolError(endpoint, 'the siblings body has no context');
  if (!Array.isArray(siblings)) throw protocolError(endpoint, 'the siblings body has no siblings array');
  const decoded = siblings.map((item: unknown, index): Sibling => {
    if (!isRecord(item) || typeof item.value !== 'string') throw protocolError(endpoint, `sibling ${index} has no base64 value`);
    const contentType = typeof item.contentType === 'string' ? item.contentType : DEFAULT_BINARY_TYPE;
    return { value: Buffer.from(item.value, 'base64'), contentType, lastModified: parseDate(item.lastModified) };
  });
  return { context, siblings: decoded };
}

/** An unknown or missing date becomes the epoch rather than an Invalid Date that breaks sorting. */
export function parseDate(value: unknown): Date {
  if (typeof value !== 'string') return new Date(0);
  const ms = Date.parse(value);
  return new Date(Number.isNaN(ms) ? 0 : ms);
}

export { parseJson as parseJsonBody, protocolError };
