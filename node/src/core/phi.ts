/**
 * Phi-accrual failure detection (Hayashibara et al. 2004, as used by Cassandra and Akka).
 * Instead of a yes/no timeout, phi grows with the time since the last heartbeat relative to the
 * observed inter-arrival times; a node is suspected when phi passes a threshold (Cassandra's
 * default is 8). Time comes in as an argument, so the detector is deterministic.
 */
export interface PhiOptions {
  /** Suspect a node when phi exceeds this. */
  readonly threshold: number;
  /** How many inter-arrival samples to keep (a bound on memory). */
  readonly windowSize: number;
  /** Floor for the standard deviation, so a perfectly regular sender is not judged too eagerly. */
  readonly minStdDeviationMs: number;
  /** Assumed interval before any sample exists. */
  readonly firstIntervalMs: number;
  /** Extra pause tolerated before suspicion starts growing (e.g. a GC pause). */
  readonly acceptablePauseMs: number;
}

export const DEFAULT_PHI_OPTIONS: PhiOptions = { threshold: 8, windowSize: 100, minStdDeviationMs: 200, firstIntervalMs: 1000, acceptablePauseMs: 1000 };

export class PhiAccrualDetector {
  private readonly intervalsMs: number[] = [];
  private lastHeartbeatMs: number | undefined;

  constructor(private readonly options: PhiOptions = DEFAULT_PHI_OPTIONS) {}

  heartbeat(nowMs: number): void {
    if (this.lastHeartbeatMs !== undefined) {
      const interval = nowMs - this.lastHeartbeatMs;
      if (interval > 0) {
        this.intervalsMs.push(interval);
        if (this.intervalsMs.length > this.options.windowSize) this.intervalsMs.shift();
      }
    }
    this.lastHeartbeatMs = nowMs;
  }

  /** Suspicion level: -log10 of the probability that a heartbeat is still on its way. */
  phi(nowMs: number): number {
    if (this.lastHeartbeatMs === undefined) return 0;
    const elapsed = nowMs - this.lastHeartbeatMs;
    const samples = this.intervalsMs.length > 0 ? this.intervalsMs : [this.options.firstIntervalMs];
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length + this.options.acceptablePauseMs;
    const variance = samples.reduce((a, b) => a + (b - mean + this.options.acceptablePauseMs) ** 2, 0) / samples.length;
    const std = Math.max(Math.sqrt(variance), this.options.minStdDeviationMs);
    // Logistic approximation of the normal CDF tail, as in Akka's detector.
    const y = (elapsed - mean) / std;
    const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
    const pLater = elapsed > mean ? e / (1 + e) : 1 - 1 / (1 + e);
    return -Math.log10(Math.max(pLater, 1e-300));
  }

  isAvailable(nowMs: number): boolean {
    return this.lastHeartbeatMs !== undefined && this.phi(nowMs) < this.options.threshold;
  }

  get lastHeartbeatAtMs(): number | undefined {
    return this.lastHeartbeatMs;
  }
}
