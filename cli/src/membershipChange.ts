/**
 * Membership changes from the command line (`join`, `leave`, `abort`, and the joins of
 * `dynamokv dev`).
 *
 * One membership change runs at a time. A node refuses a join or leave while another change is
 * still streaming, at once, with 409 MEMBERSHIP_CONFLICT whose message begins "a membership
 * change is in progress" (and Retry-After). That refusal clears by itself, so the CLI retries it,
 * showing a progress line, until its own deadline; every other error ends the command at once.
 */
import { isDynamoError } from '../../client/src/index';

/** How the node words the one refusal worth retrying (node/src/core/transition.ts). */
export const CHANGE_PENDING_MESSAGE_PREFIX = 'a membership change is in progress';
/** Between attempts; the node asks for 2 s in Retry-After. */
export const CHANGE_RETRY_INTERVAL_MS = 2000;
/** Attempts at most, whatever the deadline: a bound on the loop. */
const ATTEMPTS_MAX = 100_000;

/** Was this refused only because another membership change is still in progress? */
export function isChangePending(error: unknown): boolean {
  return isDynamoError(error) && error.code === 'MEMBERSHIP_CONFLICT' && error.message.startsWith(CHANGE_PENDING_MESSAGE_PREFIX);
}

export interface RetryOptions {
  /** Give up (with the node's last refusal) once this much time has passed; 0: one attempt. */
  readonly timeoutMs: number;
  /** Told before each wait: the node's refusal and how long the command has waited so far. */
  readonly onWaiting: (refusal: string, waitedMs: number) => void;
  readonly retryIntervalMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly nowMs?: () => number;
}

/** Runs `attempt`, retrying while another membership change is in progress, until the deadline. */
export async function retryWhileChangePending<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  const now = options.nowMs ?? (() => Date.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const interval = options.retryIntervalMs ?? CHANGE_RETRY_INTERVAL_MS;
  const startedMs = now();
  for (let attemptNo = 1; ; attemptNo++) {
    try {
      return await attempt();
    } catch (error) {
      const waitedMs = now() - startedMs;
      if (!isChangePending(error) || waitedMs + interval > options.timeoutMs || attemptNo >= ATTEMPTS_MAX) throw error;
      options.onWaiting((error as Error).message, waitedMs);
      await sleep(interval);
    }
  }
}

/**
 * A progress line for a terminal (redrawn in place) or a pipe (one line each time the node's
 * answer changes, so a log does not fill with identical lines).
 */
export function progressReporter(stream: NodeJS.WritableStream & { isTTY?: boolean }, what: string): { onWaiting: RetryOptions['onWaiting']; done: () => void } {
  let last = '';
  let drawn = false;
  return {
    onWaiting: (refusal, waitedMs) => {
      const detail = refusal.match(/\(([^)]*)\)/)?.[1] ?? 'another change is streaming';
      const line = `${what}: waiting for the membership change in progress (${detail})`;
      if (stream.isTTY === true) {
        stream.write(`\r\x1b[K${line}, ${Math.round(waitedMs / 1000)}s`);
        drawn = true;
      } else if (line !== last) {
        stream.write(`${line}\n`);
      }
      last = line;
    },
    done: () => {
      if (drawn) stream.write('\n');
    },
  };
}

/** What POST /v1/admin/abort answered. */
export interface AbortAnswer {
  readonly aborted: { readonly joining: readonly string[]; readonly leaving: readonly string[]; readonly transfers: number; readonly transfersDone: number } | null;
  readonly raw: Record<string, unknown>;
}

/** The answer of POST /v1/admin/abort (DynamoClient.abort), in the shape abortText prints. */
export function abortAnswerOf(raw: Record<string, unknown>): AbortAnswer {
  const aborted = raw.aborted;
  if (aborted === null || aborted === undefined) return { aborted: null, raw };
  const a = aborted as Record<string, unknown>;
  const ids = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return { aborted: { joining: ids(a.joining), leaving: ids(a.leaving), transfers: Number(a.transfers) || 0, transfersDone: Number(a.transfersDone) || 0 }, raw };
}

export function abortText(answer: AbortAnswer): string {
  const a = answer.aborted;
  if (a === null) return 'no membership change was pending; nothing changed\n';
  const who = [a.joining.length > 0 ? `join of ${a.joining.join(', ')}` : '', a.leaving.length > 0 ? `leave of ${a.leaving.join(', ')}` : ''].filter((s) => s !== '').join(' and ');
  return (
    `aborted the ${who || 'membership change'} (${a.transfersDone} of ${a.transfers} transfers had finished)\n` +
    'the committed plan stays in force; ' +
    (a.joining.length > 0 ? 'the joining nodes are now "left" (start them with an empty data directory to join again); ' : '') +
    (a.leaving.length > 0 ? 'the leaving nodes are normal members again; ' : '') +
    'copies already streamed are dropped by their receivers\n'
  );
}
