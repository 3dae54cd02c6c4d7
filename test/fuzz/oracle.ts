/**
 * What every answer of the node must satisfy, whatever was sent:
 * - no 5xx but 503 (a 500 INTERNAL is a bug the fuzzer found; STORAGE_CORRUPT cannot happen on
 *   undamaged storage);
 * - every error answer (4xx/5xx, except to HEAD, which has no body) is the catalogue body
 *   {"error": {"code", "message"}} with a code from the catalogue, under that code's status;
 * - every 503 carries Retry-After;
 * - the status, and the error code under it, is one the OpenAPI document lists for that path and
 *   method: the operation's own responses, 405 for another method on a known path, 404 for an
 *   unknown path, or the answers any request can get (components.responses.RequestRejected and
 *   BodyTooLarge).
 * A raw request that the HTTP parser refuses may get no answer at all (the connection closes);
 * when it gets one, it must be a catalogue 400.
 */
import { ERROR_CATALOGUE, isErrorCode } from '../../node/src/api/errors';
import { openApiDocument } from '../../node/src/api/openapi';

export interface FuzzAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

type Doc = Record<string, unknown>;

/** Documented answers: status -> the error codes listed for it (empty for answers without one). */
type Answers = ReadonlyMap<number, ReadonlySet<string>>;

interface Template {
  readonly template: string;
  readonly pattern: RegExp;
  /** Documented answers by lower-case method. */
  readonly methods: ReadonlyMap<string, Answers>;
}

/** The error codes a documented response lists (the enum of error.code), or none. */
function codesOf(response: unknown): Set<string> {
  const schema = ((((response as Doc).content as Doc | undefined)?.['application/json'] as Doc | undefined)?.schema ?? {}) as Doc;
  const code = ((((schema.properties as Doc | undefined)?.error as Doc | undefined)?.properties as Doc | undefined)?.code ?? {}) as Doc;
  return new Set(Array.isArray(code.enum) ? (code.enum as string[]) : []);
}

function answersOf(responses: Doc): Answers {
  return new Map(Object.entries(responses).map(([status, response]) => [Number(status), codesOf(response)]));
}

const TEMPLATES: readonly Template[] = Object.entries(openApiDocument.paths as unknown as Doc).map(([template, item]) => {
  const methods = new Map<string, Answers>();
  for (const [method, operation] of Object.entries(item as Doc)) {
    if (method !== 'parameters') methods.set(method, answersOf((operation as Doc).responses as Doc));
  }
  // A path parameter is one segment, possibly empty (the route then answers 400 for it).
  const pattern = new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]*')}$`);
  return { template, pattern, methods };
});

const COMPONENTS = (openApiDocument.components as unknown as Doc).responses as Doc;
/** What any request may get, whatever its path and method (components.responses). */
const ANY_ROUTE: Answers = new Map([
  [400, codesOf(COMPONENTS.RequestRejected)],
  [413, codesOf(COMPONENTS.BodyTooLarge)],
]);
const OTHER_METHOD: Answers = new Map([[405, codesOf(COMPONENTS.MethodNotAllowed)]]);
const NO_ROUTE: Answers = new Map([[404, codesOf(COMPONENTS.RouteNotFound)]]);

export function templateOf(path: string): Template | undefined {
  const bare = path.split('?')[0] ?? '';
  return TEMPLATES.find((t) => t.pattern.test(bare));
}

/** Problems with one answer; empty when it is acceptable. */
export function checkAnswer(method: string, path: string, answer: FuzzAnswer): string[] {
  const problems: string[] = [];
  const { status } = answer;
  if (status >= 500 && status !== 503) problems.push(`status ${status}`);
  if (status >= 400 && method !== 'HEAD') problems.push(...checkErrorBody(status, answer.body));
  if (status === 503 && !/^[0-9]+$/.test(String(answer.headers['retry-after'] ?? ''))) problems.push('503 without Retry-After');
  problems.push(...checkDocumented(method, path, status, method === 'HEAD' ? undefined : errorCodeOf(answer.body)));
  return problems;
}

/**
 * Checks the answer to raw bytes: none at all is fine (the parser may just close); an answer must
 * not be a 5xx but 503, and an error answer must be a catalogue body.
 */
export function checkRawAnswer(status: number | undefined, body: string): string[] {
  if (status === undefined) return [];
  const problems: string[] = [];
  if (status >= 500 && status !== 503) problems.push(`raw request answered ${status}`);
  if (status >= 400) problems.push(...checkErrorBody(status, body));
  return problems;
}

function errorCodeOf(body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } } | null)?.error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

function checkErrorBody(status: number, body: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [`error body is not JSON: ${body.slice(0, 80)}`];
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (error === undefined || typeof error.message !== 'string') return [`error body has no error.message: ${body.slice(0, 80)}`];
  if (!isErrorCode(error.code)) return [`unknown error code ${String(error.code)}`];
  if (ERROR_CATALOGUE[error.code].status !== status) return [`${error.code} answered with ${status}, catalogue says ${ERROR_CATALOGUE[error.code].status}`];
  return [];
}

function checkDocumented(method: string, path: string, status: number, code: string | undefined): string[] {
  const template = templateOf(path);
  const lower = method.toLowerCase();
  // A method fastify has no route for at all (PROPFIND, TRACE) reaches the 404 handler.
  const own = template === undefined ? NO_ROUTE : (template.methods.get(lower) ?? (['propfind', 'trace'].includes(lower) ? NO_ROUTE : OTHER_METHOD));
  for (const answers of [own, ANY_ROUTE]) {
    const codes = answers.get(status);
    if (codes !== undefined && (codes.size === 0 || code === undefined || codes.has(code))) return [];
  }
  const where = template === undefined ? `${method} ${path.slice(0, 80)} (no such route)` : `${method} ${template.template}`;
  return [`${where} answered ${status}${code === undefined ? '' : ` ${code}`}, not documented`];
}
