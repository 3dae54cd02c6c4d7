/**
 * Authentication and authorisation of the client port: bearer tokens with scopes.
 *
 * Scopes are ordered: read < write < admin, and a token carries every scope below its own.
 * - read: GET of keys, bucket properties, ring, members, handoff and status.
 * - write: read, plus PUT and DELETE of keys and PUT of bucket properties.
 * - admin: everything, including /v1/admin/* (join, leave, init, and whatever joins them later).
 * A route that is neither a read, a listed write, nor admin needs admin: a new mutating route is
 * closed until someone decides otherwise. Probes, /metrics and /v1/openapi.json need no token.
 *
 * Answers: no token, a malformed Authorization header or an unknown token -> 401 UNAUTHORIZED
 * (with WWW-Authenticate); a known token with too small a scope -> 403 FORBIDDEN naming the scope
 * the route needs (RFC 6750's insufficient_scope).
 *
 * Comparison: each configured token is kept only as an HMAC under a key drawn at start-up, and a
 * presented token is MACed the same way and compared with every entry by timingSafeEqual, without
 * stopping at a match. The time taken therefore depends neither on how much of a token is right
 * nor on its length, nor on which entry matched.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest, onRequestHookHandler } from 'fastify';
import { DynamoError } from './errors';

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ScopedToken {
  readonly scope: Scope;
  readonly token: string;
}

/** Tokens shorter than this are refused by the configuration: they could be guessed. */
export const TOKEN_CHARS_MIN = 16;
/** Far above any sensible token; a longer Authorization header is refused before MACing. */
export const TOKEN_CHARS_MAX = 4096;
/** Lines of a tokens file; a bound on what start-up reads. */
export const TOKEN_FILE_LINES_MAX = 10_000;

const RANK: Readonly<Record<Scope, number>> = { read: 1, write: 2, admin: 3 };
const TOKEN_PATTERN = /^[\x21-\x2b\x2d-\x7e]+$/;
const BEARER = /^Bearer +([^\s]+) *$/i;

/** Non-admin routes that change data; compared as "<METHOD> <route template>". */
const WRITE_ROUTES: ReadonlySet<string> = new Set(['PUT /v1/buckets/:bucket/keys/:key', 'DELETE /v1/buckets/:bucket/keys/:key', 'PUT /v1/buckets/:bucket/props']);

/** The scope a request needs, from its method and route template (e.g. /v1/buckets/:bucket/keys/:key). */
export function requiredScope(method: string, routeUrl: string): Scope {
  if (routeUrl.startsWith('/v1/admin/')) return 'admin';
  if (method === 'GET' || method === 'HEAD') return 'read';
  return WRITE_ROUTES.has(`${method} ${routeUrl}`) ? 'write' : 'admin';
}

export function scopeCovers(held: Scope, needed: Scope): boolean {
  return RANK[held] >= RANK[needed];
}

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** Why a token is not acceptable (without repeating it), or undefined when it is. */
export function tokenProblem(token: string): string | undefined {
  if (token.length < TOKEN_CHARS_MIN || token.length > TOKEN_CHARS_MAX) return `a token must be ${TOKEN_CHARS_MIN} to ${TOKEN_CHARS_MAX} characters long`;
  if (!TOKEN_PATTERN.test(token)) return 'a token must be printable ASCII without spaces or commas';
  return undefined;
}

/**
 * Parses a tokens file: one `<scope> <token>` per line, blank lines and lines starting with #
 * ignored. Problems name the line number only, never the line, so a typo in a token does not end
 * up in a log.
 */
export function parseTokensFile(text: string): { tokens: ScopedToken[]; problems: string[] } {
  const tokens: ScopedToken[] = [];
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  if (lines.length > TOKEN_FILE_LINES_MAX) return { tokens: [], problems: [`more than ${TOKEN_FILE_LINES_MAX} lines`] };
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [scope, token, ...rest] = line.split(/\s+/);
    if (scope === undefined || token === undefined || rest.length > 0) return problems.push(`line ${index + 1}: expected "<scope> <token>"`);
    if (!isScope(scope)) return problems.push(`line ${index + 1}: unknown scope (use ${SCOPES.join(', ')})`);
    const problem = tokenProblem(token);
    if (problem !== undefined) return problems.push(`line ${index + 1}: ${problem}`);
    tokens.push({ scope, token });
  });
  return { tokens, problems };
}

/** Counts per scope, for logs and status: how many tokens, never which. */
export function describeTokens(tokens: readonly ScopedToken[]): Record<Scope, number> {
  const counts: Record<Scope, number> = { read: 0, write: 0, admin: 0 };
  for (const t of tokens) counts[t.scope]++;
  return counts;
}

/** The configured tokens, held as MACs only (see the module comment). */
export class TokenSet {
  private readonly key = randomBytes(32);
  private readonly entries: readonly { readonly digest: Buffer; readonly rank: number }[];

  constructor(tokens: readonly ScopedToken[]) {
    this.entries = tokens.map((t) => ({ digest: this.digest(t.token), rank: RANK[t.scope] }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The highest scope the token carries, or undefined when no configured token equals it. */
  scopeOf(token: string): Scope | undefined {
    const presented = this.digest(token);
    let rank = 0;
    for (const entry of this.entries) {
      const match = timingSafeEqual(presented, entry.digest);
      rank = Math.max(rank, match ? entry.rank : 0);
    }
    return SCOPES.find((s) => RANK[s] === rank);
  }

  private digest(token: string): Buffer {
    return createHmac('sha256', this.key).update(token, 'utf8').digest();
  }
}

/** The token of an `Authorization: Bearer <token>` header, or undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length > TOKEN_CHARS_MAX + 64) return undefined;
  return BEARER.exec(header)?.[1];
}

/**
 * The onRequest guard of every authenticated route. It reads the route template fastify matched,
 * so one guard serves key, cluster and admin routes alike (each module passes it on unchanged).
 */
export function scopeGuard(tokens: TokenSet): onRequestHookHandler {
  return (request: FastifyRequest, _reply, done) => {
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) return done(new DynamoError('UNAUTHORIZED', undefined, { 'www-authenticate': 'Bearer' }));
    const held = tokens.scopeOf(token);
    if (held === undefined) {
      return done(new DynamoError('UNAUTHORIZED', 'The bearer token is not one this node accepts.', { 'www-authenticate': 'Bearer error="invalid_token"' }));
    }
    const needed = requiredScope(request.method, request.routeOptions.url ?? '');
    if (!scopeCovers(held, needed)) {
      return done(
        new DynamoError('FORBIDDEN', `This route needs a token with the ${needed} scope; this token has the ${held} scope.`, {
          'www-authenticate': `Bearer error="insufficient_scope", scope="${needed}"`,
        }),
      );
    }
    done();
  };
}
