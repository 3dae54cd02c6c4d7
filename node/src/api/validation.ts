/**
 * Checks on everything a client sends, run before any storage access so bad input can never
 * change stored data. Each check throws a catalogue DynamoError naming what was wrong; none of
 * them echo the offending value back in full (it may be large or sensitive).
 */
import { parseQuorumSpec, type QuorumSpec } from '../core/quorum';
import type { QuorumParameters } from './keyValueService';
import { DynamoError } from './errors';

export interface ValidationLimits {
  readonly maxBucketBytes: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
}

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
export const CONTENT_TYPE_BYTES_MAX = 256;

// RFC 9110 media type: type "/" subtype *( OWS ";" OWS parameter ), tokens of tchar, parameter
// values a token or a quoted string. Only printable ASCII, so the value is safe to echo in a header.
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const PARAMETER = `[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|"(?:[^"\\\\\\x00-\\x1f\\x7f]|\\\\[\\x20-\\x7e])*")`;
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:${PARAMETER})*$`);
// With the u flag a surrogate pair is one code point, so this matches only unpaired halves.
const LONE_SURROGATE = /\p{Surrogate}/u;

export function validateBucket(bucket: string | undefined, limits: ValidationLimits): string {
  return validateName('BUCKET_INVALID', 'bucket', bucket, limits.maxBucketBytes);
}

export function validateKey(key: string | undefined, limits: ValidationLimits): string {
  return validateName('KEY_INVALID', 'key', key, limits.maxKeyBytes);
}

function validateName(code: 'BUCKET_INVALID' | 'KEY_INVALID', what: string, name: string | undefined, maxBytes: number): string {
  if (name === undefined || name.length === 0) throw new DynamoError(code, `The ${what} must not be empty.`);
  // The router decodes percent-escapes with decodeURIComponent, which rejects invalid UTF-8, so
  // a decoded name is well-formed; a lone surrogate can still arrive through other callers.
  if (LONE_SURROGATE.test(name)) throw new DynamoError(code, `The ${what} is not valid UTF-8.`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > maxBytes) throw new DynamoError(code, `The ${what} is ${bytes} bytes long; the limit is ${maxBytes}.`);
  return name;
}

/** The stored content type: the request's Content-Type, or application/octet-stream without one. */
export function validateContentType(header: string | undefined): string {
  if (header === undefined || header === '') return DEFAULT_CONTENT_TYPE;
  if (header.length > CONTENT_TYPE_BYTES_MAX) {
    throw new DynamoError('CONTENT_TYPE_INVALID', `The Content-Type is longer than ${CONTENT_TYPE_BYTES_MAX} characters.`);
  }
  const trimmed = header.trim();
  if (!MEDIA_TYPE.test(trimmed)) throw new DynamoError('CONTENT_TYPE_INVALID');
  return trimmed;
}

export function validateValue(value: Uint8Array, limits: ValidationLimits): Uint8Array {
  // The body parser enforces the same limit while reading; this check keeps the rule true for
  // any other caller of the service path.
  if (value.length > limits.maxValueBytes) {
    throw new DynamoError('VALUE_TOO_LARGE', `The value is ${value.length} bytes; the limit is ${limits.maxValueBytes}.`);
  }
  return value;
}

/** Query parameters each operation accepts. */
export const QUERY_PARAMETERS = {
  get: ['r', 'pr', 'consistent'],
  put: ['returnbody', 'w', 'dw', 'pw'],
  delete: ['w', 'dw', 'pw'],
} as const satisfies Record<string, readonly string[]>;

export type KeyOperation = keyof typeof QUERY_PARAMETERS;

export interface ParsedQuery {
  readonly returnBody: boolean;
  readonly consistent: boolean;
  readonly quorum: QuorumParameters;
}

type RawQuery = Readonly<Record<string, string | string[] | undefined>>;

const QUORUM_NAMES = new Set(['r', 'pr', 'w', 'dw', 'pw']);

/**
 * Rejects unknown parameter names (a typo such as `returnBody` would otherwise be ignored
 * silently), repeated parameters, and values outside each parameter's vocabulary. Quorum values
 * are checked against N later, by the service, which knows N.
 */
export function parseQuery(operation: KeyOperation, query: RawQuery | undefined): ParsedQuery {
  const allowed: readonly string[] = QUERY_PARAMETERS[operation];
  let returnBody = false;
  let consistent = false;
  const quorum: Record<string, QuorumSpec> = {};
  for (const [name, value] of Object.entries(query ?? {})) {
    if (!allowed.includes(name)) {
      throw new DynamoError('PARAMETER_INVALID', `Unknown query parameter "${truncate(name)}" for ${operation.toUpperCase()}.`);
    }
    if (typeof value !== 'string') throw new DynamoError('PARAMETER_INVALID', `The query parameter "${name}" is given more than once.`);
    if (name === 'returnbody') returnBody = parseBoolean(name, value);
    else if (name === 'consistent') consistent = parseBoolean(name, value);
    else if (QUORUM_NAMES.has(name)) {
      const spec = parseQuorumSpec(value);
      if (spec === undefined) throw new DynamoError('PARAMETER_INVALID', `The query parameter "${name}" must be an integer or one, quorum, all.`);
      quorum[name] = spec;
    }
  }
  return { returnBody, consistent, quorum };
}

function parseBoolean(name: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new DynamoError('PARAMETER_INVALID', `The query parameter "${name}" must be true or false.`);
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}
