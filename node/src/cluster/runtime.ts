/**
 * Time, randomness and timers for the cluster layer, behind one interface so a simulator can
 * drive the same code with a virtual clock and a seeded generator.
 */
export interface Runtime {
  nowMs(): number;
  /** Uniform in [0, 1). */
  random(): number;
  /** Runs `task` after `delayMs`; the returned function cancels it. */
  schedule(task: () => void, delayMs: number): () => void;
}

export const realRuntime: Runtime = {
  nowMs: () => Date.now(),
  random: () => Math.random(),
  schedule: (task, delayMs) => {
    const timer = setTimeout(task, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/**
 * Runs `task` every `intervalMs` (plus jitter), never overlapping itself: the next run is
 * scheduled only after the previous one settled. Returns a stop function.
 */
export function every(runtime: Runtime, intervalMs: number, task: () => Promise<void>, onError: (error: unknown) => void): () => void {
  let stopped = false;
  let cancel: () => void = () => undefined;
  const loop = () => {
    if (stopped) return;
    const jitterMs = intervalMs * 0.2 * runtime.random();
    cancel = runtime.schedule(() => {
      task()
        .catch(onError)
        .finally(loop);
    }, intervalMs + jitterMs);
  };
  loop();
  return () => {
    stopped = true;
    cancel();
  };
}
