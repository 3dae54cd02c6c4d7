/**
 * A list+watch cache of one resource type (one namespace or all), written for the failure modes
 * client-node's informer has (it stops for good on most errors):
 * - every failure restarts the loop after a capped exponential back-off with jitter, so an API
 *   server outage costs a few requests a minute, not a tight loop;
 * - 410 Gone (the resourceVersion is too old) re-lists; other watch errors re-watch from the last
 *   resourceVersion seen, and re-list after a few failures in a row;
 * - bookmarks are requested and the server ends each watch after timeoutSeconds, so a watch is
 *   never older than that; a watch silent for longer than idleTimeoutMs counts as broken;
 * - a full re-list every relistIntervalMs as the last line of defence against a missed event.
 * Handlers must be idempotent: a re-list reports every object again (as the reconciler is).
 */
import type { Logger } from 'pino';
import { KubeError, isGone, type KubeClient, type RawObject } from './client';
import { resourcePath, withQuery, type Kind } from './paths';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface InformerOptions {
  readonly client: KubeClient;
  readonly kind: Kind;
  /** Undefined: every namespace. */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly onChange: (type: ChangeType, object: RawObject) => void;
  readonly log: Logger;
  readonly watchTimeoutSeconds?: number;
  readonly idleTimeoutMs?: number;
  readonly relistIntervalMs?: number;
}

const BACKOFF_MS_MIN = 500;
const BACKOFF_MS_MAX = 30_000;
const WATCH_FAILURES_BEFORE_RELIST = 3;
const LIST_PAGE_LIMIT = 500;
const LIST_PAGES_MAX = 1000;

export function objectKey(object: RawObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

export class Informer {
  private readonly cache = new Map<string, RawObject>();
  private readonly abort = new AbortController();
  private resourceVersion = '';
  private failures = 0;
  private syncedResolve: (() => void) | undefined;
  /** Resolves after the first complete list. */
  readonly synced: Promise<void>;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: InformerOptions) {
    this.synced = new Promise((resolve) => (this.syncedResolve = resolve));
  }

  get(namespace: string, name: string): RawObject | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  list(filter: (object: RawObject) => boolean = () => true): RawObject[] {
    return [...this.cache.values()].filter(filter);
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private get path(): string {
    return resourcePath(this.options.kind, this.options.namespace);
  }

  private async run(): Promise<void> {
    const relistIntervalMs = this.options.relistIntervalMs ?? 10 * 60_000;
    while (!this.abort.signal.aborted) {
      try {
        await this.relist();
        this.syncedResolve?.();
        const listedAtMs = Date.now();
        let watchFailures = 0;
        while (!this.abort.signal.aborted && Date.now() - listedAtMs < relistIntervalMs && watchFailures < WATCH_FAILURES_BEFORE_RELIST) {
          try {
            await this.watchOnce();
            watchFailures = 0;
            this.failures = 0;
          } catch (error) {
            if (isGone(error)) break;
            watchFailures++;
            this.options.log.warn({ err: error, kind: this.options.kind, namespace: this.options.namespace }, 'watch failed; watching again');
            await this.backoff();
          }
        }
      } catch (error) {
        this.options.log.warn({ err: error, kind: this.options.kind, namespace: this.options.namespace }, 'list failed; retrying');
        await this.backoff();
      }
    }
  }

  private async backoff(): Promise<void> {
    this.failures++;
    const ceiling = Math.min(BACKOFF_MS_MAX, BACKOFF_MS_MIN * 2 ** Math.min(this.failures, 16));
    const delayMs = ceiling / 2 + Math.random() * (ceiling / 2);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delayMs);
      this.abort.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }

  /** Lists everything (paginated) and reconciles the cache with it, reporting each difference. */
  private async relist(): Promise<void> {
    const seen = new Map<string, RawObject>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    for (let page = 0; page < LIST_PAGES_MAX; page++) {
      const list = await this.options.client.request('GET', withQuery(this.path, { labelSelector: this.options.labelSelector, limit: LIST_PAGE_LIMIT, continue: continueToken }));
      const items = Array.isArray(list.items) ? (list.items as RawObject[]) : [];
      const metadata = (list.metadata ?? {}) as { resourceVersion?: string; continue?: string };
      resourceVersion = metadata.resourceVersion ?? resourceVersion;
      for (const item of items) seen.set(objectKey(item), item);
      continueToken = metadata.continue === '' ? undefined : metadata.continue;
      if (continueToken === undefined) break;
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.options.onChange('DELETED', old);
      }
    }
    for (const [key, item] of seen) {
      const old = this.cache.get(key);
      this.cache.set(key, item);
      if (old?.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.options.onChange(old === undefined ? 'ADDED' : 'MODIFIED', item);
    }
    this.resourceVersion = resourceVersion;
  }

  private async watchOnce(): Promise<void> {
    const timeoutSeconds = this.options.watchTimeoutSeconds ?? 300;
    const path = withQuery(this.path, {
      watch: true,
      labelSelector: this.options.labelSelector,
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
    });
    const idleTimeoutMs = this.options.idleTimeoutMs ?? (timeoutSeconds + 60) * 1000;
    await this.options.client.watch(path, (event) => {
      const version = event.object.metadata?.resourceVersion;
      if (event.type === 'ERROR') {
        const code = typeof event.object.code === 'number' ? event.object.code : 0;
        // 410 here means the resourceVersion expired while watching: the caller re-lists.
        throw new KubeError(code, 'WatchError', `watch error ${code}: ${String(event.object.message ?? '')}`);
      }
      if (version !== undefined) this.resourceVersion = version;
      if (event.type === 'BOOKMARK') return;
      const key = objectKey(event.object);
      if (event.type === 'DELETED') this.cache.delete(key);
      else this.cache.set(key, event.object);
      this.options.onChange(event.type, event.object);
    }, this.abort.signal, idleTimeoutMs);
  }
}
