/**
 * The HTTP fuzzer's request generator: seeded, so a failing request can be replayed from its
 * seed and index. It mixes well-formed requests (which reach deep code paths: contexts from real
 * answers, valid quorums, bodies near the size limit) with damaged ones: unknown methods and
 * paths, bad percent-escapes, over-long names, junk query strings, tampered or garbage contexts,
 * repeated headers, odd content types, random JSON and bytes. A few requests are raw bytes on a
 * socket, for what an HTTP client library refuses to send (broken request lines, control
 * characters in headers, oversized headers, bad chunked bodies).
 *
 * The generator never names the sentinel bucket or sentinel keys (see campaign.ts), and its admin
 * requests cannot change the ring of a one-node cluster: joins name seeds where nothing listens,
 * leaves name strangers or the last member (which is refused).
 */
import { Prng } from '../../node/src/core/prng';

export type FuzzRequest =
  | {
      readonly kind: 'http';
      readonly method: string;
      /** Path and query as sent (may hold bad escapes). */
      readonly path: string;
      readonly headers: Record<string, string | string[]>;
      readonly body?: Buffer;
    }
  | { readonly kind: 'raw'; readonly what: string; readonly bytes: Buffer };

export interface GeneratorContext {
  /** Contexts from earlier answers: valid tokens make writes take real paths. */
  readonly contexts: readonly string[];
  /** A port where nothing listens, for join seeds. */
  readonly closedPort: number;
  readonly limits: { readonly maxBucketBytes: number; readonly maxKeyBytes: number; readonly maxValueBytes: number };
}

const METHODS = ['GET', 'GET', 'GET', 'GET', 'GET', 'PUT', 'PUT', 'PUT', 'PUT', 'PUT', 'DELETE', 'DELETE', 'DELETE', 'POST', 'POST', 'HEAD', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND'];
const BUCKETS = ['b', 'users', 'fuzz', 'ünï', 'a b', 'x.y-z_1'];
const KEYS = ['k', 'k1', 'alice', 'ключ', '日本', 'a/b', 'x?y', 'sp ace', '%', '..', '.'];
const QUORUM_VALUES = ['0', '1', '2', '3', '4', '99', 'one', 'quorum', 'all', 'ALL', '-1', '1.5', '', 'x', '007', '1e3', '9007199254740993'];
const QUERY_NAMES = ['r', 'w', 'dw', 'pr', 'pw', 'consistent', 'returnbody', 'waitMs', 'nope', 'R', ''];
const CONTENT_TYPES = ['text/plain', 'application/json', 'application/octet-stream', 'text/plain; charset=utf-8', 'nonsense', '', 'a/b; c', 'text/plain; charset="', 'x'.repeat(300), 'multipart/form-data; boundary=x'];
const BAD_ESCAPES = ['%', '%F', '%FF', '%zz', '%C3', '%C3%28', '%E2%82', '%00', '%2F', '%25', '%ED%A0%80'];
const FIXED_PATHS = ['/v1/ring', '/v1/members', '/v1/handoff', '/v1/status', '/healthz', '/readyz', '/metrics', '/v1/openapi.json', '/v1/admin/join', '/v1/admin/leave', '/v1/admin/init', '/v1/admin/abort'];
const JUNK_PATHS = ['/', '//', '/v1', '/v1/', '/v1/buckets', '/v1/buckets/', '/v1/ring/', '//v1/ring', '/v1/./ring', '/v1/../v1/ring', '/V1/RING', '/v2/ring', '/peer/v1/ping', '/v1/buckets/b/keys', '/v1/buckets/b/keys/k/extra', '/v1/buckets/b/props/x', '/*', '/%2e%2e/'];
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const NAME_CHARS = 'abcxyz019._-~!$&\'()*+,;=:@';

export function generateRequest(prng: Prng, context: GeneratorContext): FuzzRequest {
  if (prng.chance(0.03)) return rawRequest(prng);
  const method = prng.pick(METHODS);
  const path = randomPath(prng, context) + randomQuery(prng);
  const headers: Record<string, string | string[]> = {};
  if (prng.chance(0.7)) headers['content-type'] = prng.pick(CONTENT_TYPES);
  if (prng.chance(0.45)) headers['x-dynamo-context'] = randomContext(prng, context);
  if (prng.chance(0.03)) headers['x-dynamo-context'] = [randomContext(prng, context), randomContext(prng, context)];
  if (prng.chance(0.05)) headers.authorization = prng.pick(['Bearer x', 'Basic Zm9vOmJhcg==', 'Bearer', '']);
  if (prng.chance(0.05)) headers[`x-fuzz-${prng.int(0, 9)}`] = randomText(prng, prng.int(0, 2000), NAME_CHARS);
  const body = method === 'HEAD' || (method === 'GET' && prng.chance(0.8)) ? undefined : randomBody(prng, context, path);
  return { kind: 'http', method, path, headers, ...(body === undefined ? {} : { body }) };
}

function randomPath(prng: Prng, context: GeneratorContext): string {
  const roll = prng.next();
  if (roll < 0.55) return `/v1/buckets/${randomName(prng, context.limits.maxBucketBytes)}/keys/${randomName(prng, context.limits.maxKeyBytes)}`;
  if (roll < 0.65) return `/v1/buckets/${randomName(prng, context.limits.maxBucketBytes)}/props`;
  if (roll < 0.85) return prng.pick(FIXED_PATHS);
  return prng.pick(JUNK_PATHS);
}

/** A bucket or key segment: usually a plain encoded name, sometimes empty, too long or badly escaped. */
function randomName(prng: Prng, bytesMax: number): string {
  const roll = prng.next();
  if (roll < 0.6) return encodeURIComponent(prng.pick([...BUCKETS, ...KEYS]));
  if (roll < 0.7) return encodeURIComponent(randomText(prng, prng.int(1, 12), NAME_CHARS));
  if (roll < 0.75) return '';
  if (roll < 0.82) return 'n'.repeat(prng.pick([bytesMax, bytesMax + 1, bytesMax * 3, 70_000]));
  if (roll < 0.87) return encodeURIComponent('é'.repeat(Math.ceil(bytesMax / 2) + prng.int(-1, 1)));
  return `${prng.pick(['k', 'b', ''])}${prng.pick(BAD_ESCAPES)}${prng.pick(['', 'x', '%41'])}`;
}

function randomQuery(prng: Prng): string {
  if (prng.chance(0.4)) return '';
  if (prng.chance(0.05)) return prng.pick(['?', '?&&', '?=', '?r', '?r=1&r=2', `?${'a'.repeat(5000)}=1`, '?r=%FF', '?consistent=maybe']);
  const parts: string[] = [];
  for (let i = prng.int(1, 3); i > 0; i--) {
    const name = prng.pick(QUERY_NAMES);
    const value = name === 'consistent' || name === 'returnbody' ? prng.pick(['true', 'false', 'yes', '']) : prng.pick(QUORUM_VALUES);
    parts.push(`${name}=${encodeURIComponent(value)}`);
  }
  return `?${parts.join('&')}`;
}

function randomContext(prng: Prng, context: GeneratorContext): string {
  const roll = prng.next();
  const known = context.contexts.length > 0 ? prng.pick(context.contexts) : undefined;
  if (known !== undefined && roll < 0.35) return known;
  if (known !== undefined && roll < 0.55) {
    // One character changed: the MAC must refuse it.
    const at = prng.int(0, known.length - 1);
    const replacement = BASE64URL[(BASE64URL.indexOf(known[at]!) + prng.int(1, 63)) % 64]!;
    return known.slice(0, at) + replacement + known.slice(at + 1);
  }
  if (known !== undefined && roll < 0.6) return known.slice(0, prng.int(0, known.length - 1));
  if (roll < 0.8) return randomText(prng, prng.int(0, 120), BASE64URL);
  if (roll < 0.9) return randomText(prng, prng.int(1, 40), '!@#$%^&*()+=[]{};:,.<>/?\\|`~ "\'');
  return randomText(prng, prng.pick([8192, 8193, 12_000]), BASE64URL);
}

function randomBody(prng: Prng, context: GeneratorContext, path: string): Buffer | undefined {
  const roll = prng.next();
  if (roll < 0.1) return undefined;
  if (path.startsWith('/v1/admin/') || path.includes('/props')) return Buffer.from(randomJson(prng, context));
  if (roll < 0.5) return Buffer.from(randomText(prng, prng.int(0, 64), NAME_CHARS));
  if (roll < 0.75) return randomBytes(prng, prng.int(0, 2048));
  if (roll < 0.85) return Buffer.alloc(context.limits.maxValueBytes + prng.int(-1, 1), 0x61);
  if (roll < 0.9) return Buffer.alloc(context.limits.maxValueBytes * prng.int(2, 20), 0x62);
  return Buffer.from(randomJson(prng, context));
}

/** Bodies for JSON routes: right shapes with wrong values, wrong shapes, and broken JSON. */
function randomJson(prng: Prng, context: GeneratorContext): string {
  const seed = prng.pick([`127.0.0.1:${context.closedPort}`, 'no port', 'http://127.0.0.1:1/x', '', 'ftp://a:1', `${'h'.repeat(2000)}:1`, 'user@127.0.0.1:9']);
  return prng.pick([
    JSON.stringify({ seed }),
    JSON.stringify({ node: prng.pick(['stranger', 'fuzz-node', '', 'x'.repeat(300)]) }),
    JSON.stringify({ node: null }),
    JSON.stringify({ r: prng.int(-2, 5), w: prng.int(-2, 5), dw: prng.int(-1, 4) }),
    JSON.stringify({ conflictMode: prng.pick(['siblings', 'lww', 'other', 3]) }),
    JSON.stringify({ r: '1' }),
    JSON.stringify({ unknown: true }),
    JSON.stringify({ ['__proto__']: { polluted: true } }),
    '{"w": 1e309}',
    '[]',
    'null',
    '"text"',
    '{"seed":',
    '{',
    '\u0000',
    JSON.stringify({ a: Array.from({ length: 50 }, () => ({ b: [1, 2, 3] })) }),
  ]);
}

/** Bytes an HTTP library would not send: each tests the parser's own refusal path. */
function rawRequest(prng: Prng): FuzzRequest {
  const key = '/v1/buckets/b/keys/raw';
  const cases: [string, string][] = [
    ['bad request line', 'GARBAGE\r\n\r\n'],
    ['unknown method', `FOO ${key} HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['HTTP/0.9 style', `GET ${key}\r\n\r\n`],
    ['space in path', 'GET /v1/buckets/b/keys/a b HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['control character in header', `GET ${key} HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n`],
    ['header without colon', `GET ${key} HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n`],
    ['oversized header', `GET ${key} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
    ['bad chunk size', `PUT ${key} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n`],
    ['length and chunked', `PUT ${key} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
    ['negative length', `PUT ${key} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`],
    ['two lengths', `PUT ${key} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`],
    ['latin-1 bytes in path', `GET /v1/buckets/b/keys/\u00ff\u00fe HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['NUL in request line', `GET /v1/ring\u0000 HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['newline-only line endings', `GET /v1/ring HTTP/1.1\nHost: x\n\n`],
  ];
  const [what, text] = prng.pick(cases);
  return { kind: 'raw', what, bytes: Buffer.from(text, 'latin1') };
}

function randomText(prng: Prng, length: number, alphabet: string): string {
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[prng.int(0, alphabet.length - 1)];
  return text;
}

function randomBytes(prng: Prng, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = prng.int(0, 255);
  return bytes;
}
