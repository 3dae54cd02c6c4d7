/**
 * The one module that talks to the Kubernetes API server (dependency-cruiser enforces it).
 *
 * @kubernetes/client-node is used for what it does well: reading a kubeconfig (or the in-cluster
 * service account) and producing TLS material and the Authorization header. Requests themselves go
 * through node:https, because the operator needs only a handful of verbs and full control over
 * them: server-side apply with its content type and field manager, merge patches on the status
 * subresource with a resourceVersion precondition, and watches whose lifetime, timeouts and
 * restarts are ours (client-node's informers stop on most errors; see informer.ts).
 */
import { Agent, request, type RequestOptions } from 'node:https';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';
import { FIELD_MANAGER, type KubeObject } from '../core/types';

/** Largest response body read into memory (a list of every pod of a big namespace fits). */
const RESPONSE_BYTES_MAX = 64 * 1024 * 1024;
/** One watch event line at most; anything longer is a broken stream. */
const WATCH_LINE_CHARS_MAX = 16 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 30_000;

export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

export const isNotFound = (error: unknown): boolean => error instanceof KubeError && error.status === 404;
export const isConflict = (error: unknown): boolean => error instanceof KubeError && error.status === 409;
export const isGone = (error: unknown): boolean => error instanceof KubeError && error.status === 410;

export interface RawObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly generation?: number;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
    readonly deletionTimestamp?: string;
    readonly ownerReferences?: ReadonlyArray<{ readonly uid?: string; readonly controller?: boolean; readonly kind?: string }>;
  };
  readonly [field: string]: unknown;
}

export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: RawObject;
}

export interface KubeClientOptions {
  /** A kubeconfig file; in-cluster configuration (service account) when absent. */
  readonly kubeconfigPath?: string;
}

export class KubeClient {
  private agent: Agent | HttpAgent | undefined;

  private constructor(
    private readonly config: KubeConfig,
    readonly server: URL,
  ) {}

  static async create(options: KubeClientOptions): Promise<KubeClient> {
    // client-node is ESM-only; Node 24 loads it from CommonJS through require(esm).
    const { KubeConfig } = await import('@kubernetes/client-node');
    const config = new KubeConfig();
    if (options.kubeconfigPath !== undefined && options.kubeconfigPath !== '') config.loadFromFile(options.kubeconfigPath);
    else config.loadFromCluster();
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig names no current cluster');
    return new KubeClient(config, new URL(cluster.server));
  }

  /** Connection options with fresh credentials (tokens may rotate) and a shared keep-alive agent. */
  private async options(method: string, path: string, headers: Record<string, string>, timeoutMs: number): Promise<RequestOptions> {
    const options: RequestOptions & { headers: Record<string, string> } = { method, headers: { accept: 'application/json', ...headers } };
    await this.config.applyToHTTPSOptions(options);
    if (this.agent === undefined) {
      const tls = { ca: options.ca, cert: options.cert, key: options.key, rejectUnauthorized: options.rejectUnauthorized };
      this.agent = this.server.protocol === 'http:' ? new HttpAgent({ keepAlive: true }) : new Agent({ ...tls, keepAlive: true, maxSockets: 64 });
    }
    return {
      ...options,
      agent: this.agent,
      protocol: this.server.protocol,
      hostname: this.server.hostname,
      port: this.server.port,
      path: `${this.server.pathname.replace(/\/$/, '')}${path}`,
      timeout: timeoutMs,
    };
  }

  private async send(method: string, path: string, body: string | undefined, headers: Record<string, string>, timeoutMs = REQUEST_TIMEOUT_MS): Promise<IncomingMessage> {
    const options = await this.options(method, path, body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) }, timeoutMs);
    const send = this.server.protocol === 'http:' ? httpRequest : request;
    return new Promise((resolve, reject) => {
      const req = send(options, resolve);
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
      req.end(body);
    });
  }

  /** A request with a JSON answer; non-2xx answers throw KubeError with the API's reason. */
  async request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<RawObject> {
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const response = await this.send(method, path, text, text === undefined ? {} : { 'content-type': contentType });
    const answer = await readBody(response);
    const parsed = answer === '' ? {} : parseJson(answer, `${method} ${path}`);
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) return parsed;
    const reason = typeof parsed.reason === 'string' ? parsed.reason : 'Unknown';
    const message = typeof parsed.message === 'string' ? parsed.message : answer.slice(0, 500);
    throw new KubeError(status, reason, `${method} ${path}: ${status} ${reason}: ${message}`);
  }

  async get(path: string): Promise<RawObject | undefined> {
    try {
      return await this.request('GET', path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Server-side apply: we own exactly the fields we send, and take them over from others (force). */
  async apply(path: string, object: KubeObject): Promise<RawObject> {
    return this.request('PATCH', `${path}?fieldManager=${FIELD_MANAGER}&force=true`, object, 'application/apply-patch+yaml');
  }

  async mergePatch(path: string, patch: unknown): Promise<RawObject> {
    return this.request('PATCH', path, patch, 'application/merge-patch+json');
  }

  /** Deletes; a missing object counts as deleted. */
  async delete(path: string, options: { uid?: string } = {}): Promise<void> {
    const body = options.uid === undefined ? undefined : { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: options.uid } };
    try {
      await this.request('DELETE', path, body);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /**
   * Streams a watch until the server ends it, the signal aborts it, or it is silent for longer
   * than `idleTimeoutMs` (a watch that stalls without closing is a known failure mode, so silence
   * is treated as an error and the caller re-lists). Resolves on a clean end; rejects otherwise.
   */
  async watch(path: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal, idleTimeoutMs: number): Promise<void> {
    const response = await this.send('GET', path, undefined, {}, idleTimeoutMs);
    const status = response.statusCode ?? 0;
    if (status !== 200) {
      const answer = await readBody(response);
      throw new KubeError(status, 'WatchFailed', `watch ${path}: ${status}: ${answer.slice(0, 500)}`);
    }
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        response.destroy();
        if (error === undefined) resolve();
        else reject(error);
      };
      let timer = setTimeout(() => finish(new Error(`watch ${path} was silent for ${idleTimeoutMs} ms`)), idleTimeoutMs);
      const onAbort = () => finish();
      signal.addEventListener('abort', onAbort);
      const lines = createInterface({ input: response, crlfDelay: Infinity });
      lines.on('line', (line) => {
        clearTimeout(timer);
        timer = setTimeout(() => finish(new Error(`watch ${path} was silent for ${idleTimeoutMs} ms`)), idleTimeoutMs);
        if (line.length === 0) return;
        if (line.length > WATCH_LINE_CHARS_MAX) return finish(new Error(`watch ${path}: an event of ${line.length} characters`));
        let event: WatchEvent;
        try {
          event = decodeWatchEvent(line);
        } catch (error) {
          return finish(error as Error);
        }
        try {
          onEvent(event);
        } catch (error) {
          finish(error as Error);
        }
      });
      response.on('error', (error) => finish(error));
      response.on('end', () => finish());
      response.on('close', () => finish());
    });
  }

  close(): void {
    this.agent?.destroy();
  }
}

function decodeWatchEvent(line: string): WatchEvent {
  const parsed = parseJson(line, 'watch event');
  const type = parsed.type;
  if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'BOOKMARK' && type !== 'ERROR') throw new Error(`watch event of unknown type ${String(type)}`);
  const object = parsed.object;
  if (typeof object !== 'object' || object === null || Array.isArray(object)) throw new Error('watch event without an object');
  return { type, object: object as RawObject };
}

function parseJson(text: string, what: string): RawObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${what}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what}: the answer is not a JSON object`);
  return value as RawObject;
}

async function readBody(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response) {
    const buffer = chunk as Buffer;
    bytes += buffer.length;
    if (bytes > RESPONSE_BYTES_MAX) {
      response.destroy();
      throw new Error(`response larger than ${RESPONSE_BYTES_MAX} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
