/**
 * Admission control for background work: hint delivery, anti-entropy and handoff ask the budget
 * before each unit of work (one hint, one repaired key or exchange, one handoff batch), and the
 * budget makes them wait while the node is busy with clients, so repairs and streams do not
 * push up foreground latency.
 *
 * "Busy" has two signals, either one is enough:
 * - client requests in flight at or above `inFlightHigh` (the API's own count), and
 * - event-loop lag above `lagMsHigh` while any client request is in flight: a timer that should
 *   fire every `sampleIntervalMs` is late by that much (smoothed), so every request already waits
 *   that long for the CPU. Lag alone, with no client waiting, is not a reason to hold back: on a
 *   machine starved by other processes it would only slow a join or a repair for nobody's gain.
 *
 * A busy node does not starve background work forever: that would leave hints undelivered and a
 * join streaming for as long as clients keep the node busy. Each kind of work is let through at
 * least once per `trickleIntervalMs`, so under sustained load it slows to a trickle instead of
 * stopping; a unit never waits longer than that. While waiting, the budget re-checks after a
 * delay that doubles from `waitMsMin` to `waitMsMax`.
 */
import type { Runtime } from './runtime';

export const BACKGROUND_KINDS = ['hints', 'antiEntropy', 'handoff'] as const;
export type BackgroundKind = (typeof BACKGROUND_KINDS)[number];

/** What background loops call; a test or a node without a budget passes ALWAYS_ADMIT. */
export interface BackgroundAdmission {
  /** Resolves when one unit of `kind` may run; waits at most the budget's trickle interval. */
  admit(kind: BackgroundKind): Promise<void>;
}

export const ALWAYS_ADMIT: BackgroundAdmission = { admit: async () => undefined };

export interface BackgroundBudgetOptions {
  /** Background work waits while this many client requests (or more) are in flight. */
  readonly inFlightHigh: number;
  /** ... or while the smoothed event-loop lag exceeds this. */
  readonly lagMsHigh: number;
  /** How often the lag timer fires. */
  readonly sampleIntervalMs: number;
  readonly waitMsMin: number;
  readonly waitMsMax: number;
  /** Each kind runs at least one unit per this interval, however busy the node is. */
  readonly trickleIntervalMs: number;
}

export const DEFAULT_BACKGROUND_BUDGET_OPTIONS: BackgroundBudgetOptions = {
  inFlightHigh: 256,
  lagMsHigh: 50,
  sampleIntervalMs: 100,
  waitMsMin: 10,
  waitMsMax: 200,
  trickleIntervalMs: 1000,
};

export interface BackgroundBudgetMetrics {
  /** A unit of `kind` had to wait `waitedMs` before it was let through. */
  deferred(kind: BackgroundKind, waitedMs: number): void;
}

export interface BackgroundBudgetSummary {
  readonly busy: string | null;
  readonly eventLoopLagMs: number;
  readonly admitted: Readonly<Record<BackgroundKind, number>>;
  readonly deferred: Readonly<Record<BackgroundKind, number>>;
}

/** Weight of a new lag sample in the smoothed value: spikes count, and fade within a second. */
const LAG_SMOOTHING = 0.3;

export class BackgroundBudget implements BackgroundAdmission {
  private lagMs = 0;
  private stopSampler: () => void = () => undefined;
  private readonly lastAdmittedMs = new Map<BackgroundKind, number>();
  private readonly admitted: Record<BackgroundKind, number> = { hints: 0, antiEntropy: 0, handoff: 0 };
  private readonly deferred: Record<BackgroundKind, number> = { hints: 0, antiEntropy: 0, handoff: 0 };

  constructor(
    private readonly runtime: Runtime,
    /** Client requests in flight right now (the API's in-flight guard count). */
    private readonly foregroundInFlight: () => number,
    private readonly options: BackgroundBudgetOptions = DEFAULT_BACKGROUND_BUDGET_OPTIONS,
    private readonly metrics?: BackgroundBudgetMetrics,
  ) {
    if (!(options.waitMsMin > 0 && options.waitMsMax >= options.waitMsMin && options.trickleIntervalMs > 0 && options.sampleIntervalMs > 0)) {
      throw new RangeError('background budget: waits, trickle and sample intervals must be positive, waitMsMax >= waitMsMin');
    }
  }

  /** Starts the event-loop lag timer; without it only the in-flight signal counts. */
  start(): void {
    this.stopSampler();
    let stopped = false;
    let cancel: () => void = () => undefined;
    const arm = () => {
      const expectedMs = this.runtime.nowMs() + this.options.sampleIntervalMs;
      cancel = this.runtime.schedule(() => {
        if (stopped) return;
        this.recordLag(Math.max(0, this.runtime.nowMs() - expectedMs));
        arm();
      }, this.options.sampleIntervalMs);
    };
    arm();
    this.stopSampler = () => {
      stopped = true;
      cancel();
    };
  }

  stop(): void {
    this.stopSampler();
  }

  /** Folds one lag sample into the smoothed lag; exposed so tests can play a busy event loop. */
  recordLag(sampleMs: number): void {
    this.lagMs = this.lagMs * (1 - LAG_SMOOTHING) + sampleMs * LAG_SMOOTHING;
  }

  /** Why background work should wait now, or undefined when the node has room for it. */
  busy(): string | undefined {
    const inFlight = this.foregroundInFlight();
    if (inFlight >= this.options.inFlightHigh) return `${inFlight} client requests in flight`;
    if (inFlight > 0 && this.lagMs > this.options.lagMsHigh) return `event loop lag ${Math.round(this.lagMs)} ms with ${inFlight} client requests in flight`;
    return undefined;
  }

  async admit(kind: BackgroundKind): Promise<void> {
    const startMs = this.runtime.nowMs();
    let delayMs = this.options.waitMsMin;
    // Bounded: each pass waits at least waitMsMin and the trickle deadline ends the loop.
    while (this.busy() !== undefined && !this.trickleDue(kind)) {
      await new Promise<void>((resolve) => this.runtime.schedule(resolve, delayMs));
      delayMs = Math.min(delayMs * 2, this.options.waitMsMax);
    }
    const nowMs = this.runtime.nowMs();
    this.lastAdmittedMs.set(kind, nowMs);
    this.admitted[kind]++;
    if (nowMs > startMs) {
      this.deferred[kind]++;
      this.metrics?.deferred(kind, nowMs - startMs);
    }
  }

  summary(): BackgroundBudgetSummary {
    return { busy: this.busy() ?? null, eventLoopLagMs: Math.round(this.lagMs), admitted: { ...this.admitted }, deferred: { ...this.deferred } };
  }

  /** True when `kind` has gone a whole trickle interval without a unit (or never had one, and waited that long). */
  private trickleDue(kind: BackgroundKind): boolean {
    const last = this.lastAdmittedMs.get(kind);
    const nowMs = this.runtime.nowMs();
    if (last === undefined) {
      // The first unit of a kind starts the clock now, so it too waits at most one interval.
      this.lastAdmittedMs.set(kind, nowMs);
      return false;
    }
    return nowMs - last >= this.options.trickleIntervalMs;
  }
}
