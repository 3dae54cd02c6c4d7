/**
 * Typed errors of the dynamokv client.
 *
 * Every failure the client reports is a DynamoError. Errors the server answered carry the code
 * from the node's error catalogue (node/src/api/errors.ts) and the HTTP status; failures that
 * never reached a server answer carry one of the client-side codes below with status 0.
 * A missing key is not an error: `get` answers `found: false`.
 */

/** Codes the node's catalogue is known to use; the server may add more, so any string is accepted. */
export type ServerErrorCode =
  | 'BUCKET_INVALID'
  | 'KEY_INVALID'
  | 'CONTEXT_INVALID'
  | 'PARAMETER_INVALID'
  | 'CONTENT_TYPE_INVALID'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'VALUE_TOO_LARGE'
  | 'INTERNAL'
  | 'STORAGE_CORRUPT'
  | 'OVERLOADED'
  | 'QUORUM_UNAVAILABLE'
  | 'MEMBERSHIP_CONFLICT';

/** Codes the client itself produces when no usable server answer exists. */
export type ClientErrorCode =
  /** No endpoint could be connected to (refused, reset, DNS...). */
  | 'UNAVAILABLE'
  /** An attempt took longer than timeoutMs. */
  | 'TIMEOUT'
  /** The server answered something this client cannot interpret. */
  | 'PROTOCOL_ERROR'
  /** The caller passed an invalid argument; nothing was sent. */
  | 'ARGUMENT_INVALID';

// `string & {}` keeps editor completion for the known codes while accepting future server codes.
export type DynamoErrorCode = ServerErrorCode | ClientErrorCode | (string & {});

export interface DynamoErrorDetails {
  /** The endpoint whose answer (or failure) this error describes, when there is one. */
  readonly endpoint?: string;
  /** The server's Retry-After, in milliseconds, when it sent one. */
  readonly retryAfterMs?: number;
  /** How many attempts were made before giving up. */
  readonly attempts?: number;
  readonly cause?: unknown;
}

export class DynamoError extends Error {
  readonly endpoint: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly attempts: number | undefined;

  constructor(
    readonly code: DynamoErrorCode,
    /** The HTTP status of the server's answer, or 0 when there was none. */
    readonly status: number,
    message: string,
    details: DynamoErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DynamoError';
    this.endpoint = details.endpoint;
    this.retryAfterMs = details.retryAfterMs;
    this.attempts = details.attempts;
  }

  /** A copy that records how many attempts the whole call made. */
  withAttempts(attempts: number): DynamoError {
    return new DynamoError(this.code, this.status, this.message, {
      endpoint: this.endpoint,
      retryAfterMs: this.retryAfterMs,
      attempts,
      cause: this.cause,
    });
  }
}

/** True when `error` is a DynamoError, optionally with the given code. */
export function isDynamoError(error: unknown, code?: DynamoErrorCode): error is DynamoError {
  return error instanceof DynamoError && (code === undefined || error.code === code);
}

/**
 * Builds the error for a non-success server answer. The body is the catalogue's JSON
 * `{"error":{"code","message"}}`; anything else still becomes a DynamoError with a code derived
 * from the status, so callers never see a raw HTTP failure.
 */
export function errorFromResponse(status: number, bodyText: string, endpoint: string, retryAfterMs: number | undefined): DynamoError {
  const parsed = parseErrorBody(bodyText);
  const code = parsed?.code ?? fallbackCode(status);
  const message = parsed?.message ?? `HTTP ${status}${bodyText.length > 0 ? `: ${bodyText.slice(0, 200)}` : ''}`;
  return new DynamoError(code, status, message, { endpoint, retryAfterMs });
}

export function parseErrorBody(text: string): { code: string; message: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || !('error' in value)) return undefined;
  const inner: unknown = value.error;
  if (typeof inner !== 'object' || inner === null) return undefined;
  const code = 'code' in inner && typeof inner.code === 'string' ? inner.code : undefined;
  if (code === undefined) return undefined;
  const message = 'message' in inner && typeof inner.message === 'string' ? inner.message : code;
  return { code, message };
}

function fallbackCode(status: number): string {
  if (status === 413) return 'VALUE_TOO_LARGE';
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 405) return 'METHOD_NOT_ALLOWED';
  if (status === 503) return 'OVERLOADED';
  if (status >= 400 && status < 500) return 'PARAMETER_INVALID';
  if (status >= 500) return 'INTERNAL';
  return 'PROTOCOL_ERROR';
}
