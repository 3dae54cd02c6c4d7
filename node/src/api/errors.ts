/**
 * THE error catalogue of the HTTP API (fastify's lib/errors.js habit): every error a client can
 * see has one code here, with its HTTP status and a default message. Handlers throw
 * `DynamoError(code, detail)`; one fastify error handler (app.ts) turns it into the body
 * `{"error": {"code", "message"}}`. The OpenAPI document lists the same codes, and a test checks
 * that the two agree in both directions.
 */

export interface ErrorDefinition {
  readonly status: number;
  readonly message: string;
}

export const ERROR_CATALOGUE = {
  BUCKET_INVALID: { status: 400, message: 'The bucket name is empty, too long or not valid UTF-8.' },
  KEY_INVALID: { status: 400, message: 'The key is empty, too long or not valid UTF-8.' },
  CONTEXT_INVALID: { status: 400, message: 'The X-Dynamo-Context header is malformed or was not issued by this cluster.' },
  PARAMETER_INVALID: { status: 400, message: 'A query parameter is unknown or has an invalid value.' },
  CONTENT_TYPE_INVALID: { status: 400, message: 'The Content-Type header is not a valid media type.' },
  REQUEST_INVALID: { status: 400, message: 'The request is malformed.' },
  UNAUTHORIZED: { status: 401, message: 'This node requires a bearer token it accepts in the Authorization header.' },
  FORBIDDEN: { status: 403, message: 'The bearer token does not carry the scope this route needs (read, write or admin).' },
  KEY_NOT_FOUND: { status: 404, message: 'The key does not exist or was deleted.' },
  NOT_FOUND: { status: 404, message: 'No such route.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'The method is not allowed on this route.' },
  MEMBERSHIP_CONFLICT: { status: 409, message: 'The membership change conflicts with the ring (already a member, last member, or another cluster).' },
  VALUE_TOO_LARGE: { status: 413, message: 'The value is larger than this node accepts.' },
  INTERNAL: { status: 500, message: 'Internal error.' },
  STORAGE_CORRUPT: { status: 500, message: 'The stored object failed its integrity check.' },
  OVERLOADED: { status: 503, message: 'The node is overloaded; retry after the delay in Retry-After.' },
  QUORUM_UNAVAILABLE: { status: 503, message: 'Not enough replicas answered to meet the requested quorum.' },
  NODE_LEFT: { status: 503, message: 'This node has left the cluster and serves no keys; send the request to another member.' },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

/** Seconds a client should wait after OVERLOADED; sent as Retry-After. */
export const OVERLOADED_RETRY_AFTER_SECONDS = 1;

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string };
}

/**
 * An error with a catalogue code. `detail` replaces the default message when given; it must
 * never contain stored values or secrets, since it goes to the client and to the log.
 * `headers` carries response headers the error needs (Allow, Retry-After, X-Dynamo-Context).
 */
export class DynamoError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    detail?: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail ?? ERROR_CATALOGUE[code].message);
    this.name = 'DynamoError';
    this.status = ERROR_CATALOGUE[code].status;
  }

  body(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOGUE, value);
}
