/**
 * Admission of client requests under overload: when requests have waited longer than a target for
 * a sustained interval, the node lowers the number of client requests it holds at once, and the
 * requests above that limit are answered 503 OVERLOADED (with Retry-After) before any work is done
 * for them. When the wait is under the target again, the limit grows back to maxInFlightRequests.
 *
 * Why: a node past what it can serve used to start every request it accepted (up to
 * maxInFlightRequests). Each then waited longer, the node did the full work for requests whose
 * clients had given up, and goodput fell far below what the node serves when it keeps up.
 *
 * The wait measured is the event loop's queueing delay: how late a timer that should fire every
 * few milliseconds actually runs. A Node process serves every request on one thread, so a request
 * waits, before its first line of JavaScript runs and between each of its steps, for everything
 * queued ahead of it on that thread: this delay. It rises only when the thread has more work than
 * it can do, not when requests wait on a hot key's lock or on a slow replica (those queues have
 * their own bounds: maxLockWaiters, replica timeouts), so one hot key does not make the node
 * refuse everyone.
 *
 * When the node is overloaded is CoDel's rule (Nichols and Jacobson, "Controlling Queue Delay",
 * 2012): delays at or above `targetDelayMs` for `intervalMs` in a row (a standing queue, not a
 * burst) start it, a sample of d ms counting as waits above the target for its last d - target
 * ms; a delay under the target ends it; and delays back within an interval of that start it again
 * at once. What the node then does is not CoDel's drop-one-and-wait, which relies on TCP senders
 * halving their rate: request clients do not back off (an open-loop one keeps its schedule), and
 * refusing every arrival while overloaded, then admitting every arrival again, lets in bursts that
 * queue as long as before. Instead, as TCP's congestion window and adaptive concurrency limits do,
 * each overloaded sample cuts the in-flight limit by a fraction (never below a small floor) and each
 * sample under the target raises it by a fraction, up to `inFlightMax`. The node so holds as many
 * requests as it can serve at about the target delay, and refuses the rest at arrival.
 *
 * Known limit, measured (docs/configuration.md, Overload): requests waiting on a hot key's lock
 * count as in flight, so under a write-heavy skewed load they keep their places under the lowered
 * limit while cheaper requests are refused; off by default for that reason.
 *
 * Pure: delays and times come in as arguments, so the rule is tested with a fake clock; app.ts
 * samples the event loop, counts the requests in flight and refuses the ones above the limit.
 */

export interface QueueDelayLimits {
  /** The queueing delay the node accepts (CoDel's target). */
  readonly targetDelayMs: number;
  /** How long delays must stay at or above the target before the node sheds (CoDel's interval). */
  readonly intervalMs: number;
  /** The in-flight limit when not overloaded, and the most it grows back to: maxInFlightRequests. */
  readonly inFlightMax: number;
}

export interface QueueDelayState {
  /** The latest sample of the queueing delay. */
  readonly queueDelayMs: number;
  /** True from a standing queue's detection until a sample under the target. */
  readonly overloaded: boolean;
  /** Client requests the node holds at once now; arrivals above it are refused. */
  readonly inFlightLimit: number;
}

/** An overloaded sample keeps this share of the limit. */
export const LIMIT_DECREASE_FACTOR = 0.9;
/** A sample under the target adds this share of the limit (at least one request). */
export const LIMIT_INCREASE_SHARE = 0.02;
/** The limit never falls below this many requests, so the node always makes progress. */
export const IN_FLIGHT_LIMIT_MIN = 4;

export function queueDelayLimitsProblem(limits: QueueDelayLimits): string | undefined {
  if (!Number.isFinite(limits.targetDelayMs) || limits.targetDelayMs <= 0) return 'targetDelayMs must be positive';
  if (!Number.isFinite(limits.intervalMs) || limits.intervalMs <= 0) return 'intervalMs must be positive';
  if (!Number.isSafeInteger(limits.inFlightMax) || limits.inFlightMax < 1) return 'inFlightMax must be a positive integer';
  return undefined;
}

export class QueueDelayGovernor {
  private latestDelayMs = 0;
  /** When the current run of delays at or above the target began; undefined after one below it. */
  private aboveSinceMs: number | undefined;
  /** When the last overload ended, for the quick re-start; undefined before any. */
  private overloadEndedMs: number | undefined;
  private isOverloaded = false;
  private limit: number;

  constructor(private readonly limits: QueueDelayLimits) {
    const problem = queueDelayLimitsProblem(limits);
    if (problem !== undefined) throw new RangeError(`queue delay limits: ${problem}`);
    this.limit = limits.inFlightMax;
  }

  /** Whether a client request arriving while `inFlight` others are held is refused. */
  refuses(inFlight: number): boolean {
    return inFlight >= this.limit;
  }

  /** One sample of the queueing delay, taken at `nowMs`. */
  observe(delayMs: number, nowMs: number): void {
    this.latestDelayMs = delayMs;
    if (delayMs < this.limits.targetDelayMs) {
      this.aboveSinceMs = undefined;
      if (this.isOverloaded) {
        this.isOverloaded = false;
        this.overloadEndedMs = nowMs;
      }
      this.limit = Math.min(this.limits.inFlightMax, this.limit + Math.max(1, Math.floor(this.limit * LIMIT_INCREASE_SHARE)));
      return;
    }
    if (!this.isOverloaded) {
      // The loop was late by delayMs, so a request that arrived when this sample was due has waited
      // that long: waits have been above the target since delayMs - target before now. One long
      // stall is thus a standing queue by itself, as long as it lasted.
      this.aboveSinceMs = Math.min(this.aboveSinceMs ?? nowMs, nowMs - delayMs + this.limits.targetDelayMs);
      const recentlyOverloaded = this.overloadEndedMs !== undefined && nowMs - this.overloadEndedMs < this.limits.intervalMs;
      this.isOverloaded = recentlyOverloaded || nowMs - this.aboveSinceMs >= this.limits.intervalMs;
    }
    if (this.isOverloaded) this.limit = Math.max(Math.min(IN_FLIGHT_LIMIT_MIN, this.limits.inFlightMax), Math.floor(this.limit * LIMIT_DECREASE_FACTOR));
  }

  state(): QueueDelayState {
    return { queueDelayMs: this.latestDelayMs, overloaded: this.isOverloaded, inFlightLimit: this.limit };
  }
}
