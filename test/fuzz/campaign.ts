/**
 * One fuzzing campaign against a running node: sentinel keys first, then `requests` generated
 * requests from `concurrency` workers, each answer checked by the oracle, the node's liveness
 * probed as it goes, and at the end the sentinels read again: the fuzzer must not have changed
 * any key it never named (their values and contexts are compared byte for byte).
 *
 * Request i is generated from Prng.derive(seed, i), so the same seed sends the same requests,
 * apart from contexts reused from earlier answers (those depend on timing). Every failure is
 * reported with the request itself, which is enough to replay it by hand.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Pool } from 'undici';
import { Prng } from '../../node/src/core/prng';
import { checkAnswer, checkRawAnswer } from './oracle';
import { generateRequest, type FuzzRequest, type GeneratorContext } from './requests';

export interface CampaignOptions {
  /** http://host:port of the node's client API. */
  readonly url: string;
  readonly seed: number;
  readonly requests: number;
  readonly concurrency: number;
  readonly limits: GeneratorContext['limits'];
  readonly closedPort: number;
  /** Called every `progressEvery` requests with the count so far. */
  readonly onProgress?: (done: number) => void;
  readonly progressEvery?: number;
}

export interface CampaignFailure {
  readonly index: number;
  readonly request: string;
  readonly problems: readonly string[];
}

export interface CampaignResult {
  readonly requests: number;
  /** Requests the HTTP client itself refused to send (e.g. a header it will not write). */
  readonly notSent: number;
  readonly byOutcome: Readonly<Record<string, number>>;
  readonly failures: readonly CampaignFailure[];
  readonly sentinelProblems: readonly string[];
  readonly durationMs: number;
}

const FAILURES_KEPT_MAX = 50;
const CONTEXTS_KEPT_MAX = 64;
const SENTINELS = 8;
const RAW_TIMEOUT_MS = 3000;
const HEALTH_EVERY = 500;
const REQUEST_TIMEOUT_MS = 40_000;

interface Sentinel {
  readonly path: string;
  readonly status: number;
  readonly body: string;
  readonly context: string | undefined;
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const startedMs = Date.now();
  const pool = new Pool(options.url, { connections: options.concurrency, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  const contexts: string[] = [];
  const generatorContext: GeneratorContext = { contexts, closedPort: options.closedPort, limits: options.limits };
  const byOutcome: Record<string, number> = {};
  const failures: CampaignFailure[] = [];
  let notSent = 0;
  let next = 0;
  let done = 0;
  try {
    const sentinels = await writeSentinels(pool);
    const worker = async () => {
      for (let index = next++; index < options.requests; index = next++) {
        const request = generateRequest(Prng.derive(options.seed, `request-${index}`), generatorContext);
        const outcome = await send(pool, options.url, request);
        if (outcome === 'not-sent') notSent++;
        else {
          byOutcome[outcome.label] = (byOutcome[outcome.label] ?? 0) + 1;
          if (outcome.context !== undefined) keepContext(contexts, outcome.context, index);
          if (outcome.problems.length > 0 && failures.length < FAILURES_KEPT_MAX) failures.push({ index, request: describe(request), problems: outcome.problems });
        }
        done++;
        if (done % HEALTH_EVERY === 0) {
          const health = await get(pool, '/healthz');
          if (health.status !== 200 && failures.length < FAILURES_KEPT_MAX) failures.push({ index, request: 'GET /healthz', problems: [`health check answered ${health.status}`] });
        }
        if (options.onProgress !== undefined && done % (options.progressEvery ?? 10_000) === 0) options.onProgress(done);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, () => worker()));
    const sentinelProblems = await checkSentinels(pool, sentinels);
    return { requests: done, notSent, byOutcome, failures, sentinelProblems, durationMs: Date.now() - startedMs };
  } finally {
    await pool.close();
  }
}

type Outcome = 'not-sent' | { readonly label: string; readonly problems: string[]; readonly context?: string };

async function send(pool: Pool, url: string, request: FuzzRequest): Promise<Outcome> {
  if (request.kind === 'raw') return sendRaw(url, request);
  let response;
  try {
    response = await pool.request({ method: request.method, path: request.path, headers: request.headers, body: request.body ?? null });
  } catch (error) {
    const code = (error as { code?: string }).code;
    // undici refused to build the request (a header or method it will not send): nothing reached the node.
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') return 'not-sent';
    return { label: 'connection error', problems: [`request failed: ${code ?? ''} ${(error as Error).message}`] };
  }
  const body = await response.body.text();
  const answer = { status: response.statusCode, headers: response.headers, body };
  const problems = checkAnswer(request.method, request.path, answer);
  const context = response.headers['x-dynamo-context'];
  return { label: `${answer.status} ${errorCode(body) ?? ''}`.trim(), problems, ...(typeof context === 'string' && context !== '' ? { context } : {}) };
}

/** Writes the raw bytes, half-closes, and reads whatever comes back until the server closes. */
function sendRaw(url: string, request: Extract<FuzzRequest, { kind: 'raw' }>): Promise<Outcome> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), RAW_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('connect', () => socket.end(request.bytes));
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      resolve({ label: `raw ${status ?? 'closed'}`, problems: checkRawAnswer(status === undefined ? undefined : Number(status), body).map((p) => `${request.what}: ${p}`) });
    });
  });
}

async function get(pool: Pool, path: string): Promise<{ status: number; body: string; context: string | undefined }> {
  const response = await pool.request({ method: 'GET', path });
  const context = response.headers['x-dynamo-context'];
  return { status: response.statusCode, body: await response.body.text(), context: typeof context === 'string' ? context : undefined };
}

async function writeSentinels(pool: Pool): Promise<Sentinel[]> {
  const tag = randomBytes(8).toString('hex');
  const paths = [
    ...Array.from({ length: SENTINELS / 2 }, (_, i) => `/v1/buckets/sentinel-${tag}/keys/k${i}`),
    // Sentinels in the buckets the fuzzer writes to, under keys it never names.
    ...Array.from({ length: SENTINELS / 2 }, (_, i) => `/v1/buckets/${['b', 'users', 'fuzz', 'b'][i]}/keys/sentinel-${tag}-${i}`),
  ];
  for (const path of paths) {
    const response = await pool.request({ method: 'PUT', path: `${path}?w=1`, headers: { 'content-type': 'text/plain' }, body: `sentinel value of ${path}` });
    await response.body.dump();
    if (response.statusCode !== 204) throw new Error(`sentinel ${path} not stored: ${response.statusCode}`);
  }
  const sentinels: Sentinel[] = [];
  for (const path of [...paths, `/v1/buckets/sentinel-${tag}/props`]) sentinels.push({ path, ...(await get(pool, path)) });
  return sentinels;
}

async function checkSentinels(pool: Pool, sentinels: readonly Sentinel[]): Promise<string[]> {
  const problems: string[] = [];
  for (const sentinel of sentinels) {
    const now = await get(pool, sentinel.path);
    if (now.status !== sentinel.status || now.body !== sentinel.body || now.context !== sentinel.context) {
      problems.push(`${sentinel.path} changed: ${sentinel.status} ${sentinel.body.slice(0, 60)} -> ${now.status} ${now.body.slice(0, 60)}`);
    }
  }
  return problems;
}

/** Keeps a bounded pool of contexts seen, replacing old ones once it is full. */
function keepContext(contexts: string[], context: string, index: number): void {
  if (contexts.length < CONTEXTS_KEPT_MAX) contexts.push(context);
  else contexts[index % CONTEXTS_KEPT_MAX] = context;
}

function errorCode(body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } } | null)?.error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** The request as text for a failure report: method, path, headers and the start of the body. */
export function describe(request: FuzzRequest): string {
  if (request.kind === 'raw') return `raw (${request.what}): ${JSON.stringify(request.bytes.toString('latin1').slice(0, 200))}`;
  const body = request.body === undefined ? '' : ` body(${request.body.length}): ${JSON.stringify(request.body.subarray(0, 80).toString('latin1'))}`;
  return `${request.method} ${request.path.slice(0, 300)} headers ${JSON.stringify(request.headers).slice(0, 300)}${body}`;
}
