/**
 * A deterministic Runtime: a virtual clock with a timer queue and a seeded PRNG. Tests and the
 * simulator advance time explicitly; timers due at the same instant fire in scheduling order.
 */
import { Prng } from '../core/prng';
import type { Runtime } from './runtime';

interface Timer {
  readonly dueMs: number;
  readonly seq: number;
  readonly task: () => void;
  cancelled: boolean;
}

export class VirtualRuntime implements Runtime {
  private clockMs: number;
  private seq = 0;
  private timers: Timer[] = [];
  private readonly prng: Prng;

  constructor(seed: number, startMs = 1_700_000_000_000) {
    this.clockMs = startMs;
    this.prng = new Prng(seed);
  }

  nowMs(): number {
    return this.clockMs;
  }

  random(): number {
    return this.prng.next();
  }

  schedule(task: () => void, delayMs: number): () => void {
    const timer: Timer = { dueMs: this.clockMs + Math.max(0, delayMs), seq: this.seq++, task, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  /**
   * Advances the clock to `untilMs`, firing due timers in order. `settle` lets the caller drain
   * promise work between timers (e.g. `() => new Promise(setImmediate)`), so async tasks that a
   * timer starts complete before the next one fires. Bounded by `timersMax`.
   */
  async advanceTo(untilMs: number, settle: () => Promise<void>, timersMax = 1_000_000): Promise<void> {
    for (let fired = 0; fired < timersMax; fired++) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      this.timers.sort((a, b) => a.dueMs - b.dueMs || a.seq - b.seq);
      const next = this.timers[0];
      if (next === undefined || next.dueMs > untilMs) break;
      this.timers.shift();
      this.clockMs = Math.max(this.clockMs, next.dueMs);
      next.task();
      await settle();
    }
    this.clockMs = Math.max(this.clockMs, untilMs);
    await settle();
  }

  async advanceBy(deltaMs: number, settle: () => Promise<void>): Promise<void> {
    await this.advanceTo(this.clockMs + deltaMs, settle);
  }

  pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}
