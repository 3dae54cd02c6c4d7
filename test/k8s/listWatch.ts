/**
 * A list+watch loop that never gives up. client-node's informer stops for good on most errors (it
 * only relists on 410 Gone), so the kubelet keeps its own loop: list, then watch from the list's
 * resourceVersion with bookmarks and a server-side timeout; a watch that ends cleanly is resumed
 * from the last resourceVersion seen, and any error (or 410 Gone) leads to a fresh list after a
 * back-off. Every (re)start counts against a per-minute budget, so a server that fails at once
 * cannot turn the loop into a hot spin.
 */
import type { KubeApis } from './kubeApi';
import { describeError } from './kubeApi';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListWatchOptions<T> {
  /** For log lines. */
  readonly name: string;
  readonly apis: Pick<KubeApis, 'k8s' | 'config'>;
  /** Lists every object; `resourceVersion` is the list's. */
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  /** The collection path to watch, e.g. /api/v1/pods. */
  readonly watchPath: string;
  readonly watchQuery?: Readonly<Record<string, string>>;
  /** The full current set, after every (re)list. */
  onList(items: T[]): void;
  onEvent(type: WatchEventType, object: T): void;
  log(line: string): void;
  /** List and watch starts allowed per minute (default 30). */
  readonly startsPerMinuteMax?: number;
}

const BACKOFF_INITIAL_MS = 250;
const BACKOFF_MAX_MS = 10_000;
/** A watch that lived this long was healthy: the next failure starts the back-off afresh. */
const HEALTHY_WATCH_MS = 10_000;
/**
 * The server ends each watch after this long, before client-node's own 30 s inactivity timer would
 * abort a quiet one; the loop then resumes from the last resourceVersion (a cheap request).
 */
const WATCH_TIMEOUT_SECONDS_MIN = 15;
const WATCH_TIMEOUT_SECONDS_SPREAD = 10;
const MINUTE_MS = 60_000;

type WatchOutcome = { kind: 'closed' } | { kind: 'expired' } | { kind: 'failed'; reason: string };

interface KubeObject {
  metadata?: { resourceVersion?: string };
}

export class ListWatch<T extends KubeObject> {
  private stopped = false;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;
  private readonly starts: number[] = [];
  private backoffMs = BACKOFF_INITIAL_MS;
  private loop: Promise<void> | undefined;
  /** Resolves after the first successful list. */
  readonly synced: Promise<void>;
  private markSynced: () => void = () => undefined;

  constructor(private readonly options: ListWatchOptions<T>) {
    this.synced = new Promise((resolveSynced) => (this.markSynced = resolveSynced));
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.respectBudget();
      if (this.stopped) return;
      let resourceVersion: string;
      try {
        const listed = await this.options.list();
        resourceVersion = listed.resourceVersion;
        this.options.onList(listed.items);
        this.markSynced();
      } catch (error) {
        this.options.log(`${this.options.name}: list failed (${describeError(error)}); retrying`);
        await this.backoff();
        continue;
      }
      // Watch until the stream fails; a clean close resumes from the last resourceVersion.
      while (!this.stopped) {
        await this.respectBudget();
        if (this.stopped) return;
        const startedMs = Date.now();
        const outcome = await this.watchOnce(resourceVersion, (rv) => (resourceVersion = rv));
        if (Date.now() - startedMs >= HEALTHY_WATCH_MS) this.backoffMs = BACKOFF_INITIAL_MS;
        if (outcome.kind === 'closed') continue;
        if (!this.stopped) this.options.log(`${this.options.name}: watch ${outcome.kind === 'expired' ? 'expired (410)' : `failed (${outcome.reason})`}; listing again`);
        break;
      }
      await this.backoff();
    }
  }

  private watchOnce(resourceVersion: string, advance: (rv: string) => void): Promise<WatchOutcome> {
    const { k8s, config } = this.options.apis;
    const watch = new k8s.Watch(config);
    const timeoutSeconds = WATCH_TIMEOUT_SECONDS_MIN + Math.floor(Math.random() * WATCH_TIMEOUT_SECONDS_SPREAD);
    const query = { ...this.options.watchQuery, resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) };
    return new Promise<WatchOutcome>((resolveWatch) => {
      let outcome: WatchOutcome | undefined;
      const onEvent = (type: string, object: unknown) => {
        if (outcome !== undefined || this.stopped) return;
        if (type === 'ERROR') {
          const status = object as { code?: number; message?: string };
          outcome = status.code === 410 ? { kind: 'expired' } : { kind: 'failed', reason: `${status.code ?? '?'} ${status.message ?? ''}` };
          this.abort?.abort();
          return;
        }
        const rv = (object as KubeObject).metadata?.resourceVersion;
        if (rv !== undefined) advance(rv);
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
          try {
            this.options.onEvent(type, object as T);
          } catch (error) {
            this.options.log(`${this.options.name}: event handler failed: ${describeError(error)}`);
          }
        }
      };
      const onDone = (error: unknown) => {
        if (outcome === undefined) outcome = error == null ? { kind: 'closed' } : { kind: 'failed', reason: describeError(error) };
        resolveWatch(outcome);
      };
      watch.watch(this.options.watchPath, query, onEvent, onDone).then(
        (controller) => {
          this.abort = controller;
          if (this.stopped) controller.abort();
        },
        (error: unknown) => onDone(error ?? new Error('watch failed')),
      );
    });
  }

  /** Waits while the last minute already saw `startsPerMinuteMax` starts, then records one. */
  private async respectBudget(): Promise<void> {
    const max = this.options.startsPerMinuteMax ?? 30;
    for (;;) {
      const now = Date.now();
      while (this.starts.length > 0 && now - (this.starts[0] ?? now) >= MINUTE_MS) this.starts.shift();
      if (this.starts.length < max) break;
      await this.sleep(MINUTE_MS - (now - (this.starts[0] ?? now)));
      if (this.stopped) return;
    }
    this.starts.push(Date.now());
  }

  private async backoff(): Promise<void> {
    const jitterMs = Math.floor(Math.random() * this.backoffMs * 0.2);
    await this.sleep(this.backoffMs + jitterMs);
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolveSleep) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolveSleep();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolveSleep();
      };
    });
  }
}
