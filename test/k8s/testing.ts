/**
 * Small helpers for tests on the real control plane (this directory's and the operator's): polling
 * with a deadline, and the diagnostics a failing test should print (kubelet log, pod output,
 * control plane output, each tail bounded).
 */
import type { ControlPlane } from './controlPlane';
import type { Kubelet } from './kubelet';

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** Appended to the timeout error. */
  readonly diagnostics?: () => string;
}

/**
 * Polls `check` until it returns something other than undefined and returns that; errors thrown by
 * `check` count as "not yet". Rejects after the timeout (default 90 s) with the last error and the
 * diagnostics.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, options: WaitOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolveSleep) => setTimeout(resolveSleep, options.intervalMs ?? 250));
  }
  const last = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}\n${options.diagnostics?.() ?? ''}`);
}

/** The tails of the kubelet's log, the named pods' output and the control plane's output. */
export function diagnostics(controlPlane: ControlPlane | undefined, kubelet: Kubelet | undefined, pods: ReadonlyArray<readonly [namespace: string, name: string]>, charsMax = 6_000): string {
  const tail = (text: string | undefined, chars: number) => (text ?? '').slice(-chars);
  const outputs = pods.map(([namespace, name]) => `--- ${namespace}/${name} ---\n${tail(kubelet?.output(namespace, name), Math.floor(charsMax / 3))}`).join('\n');
  return `kubelet log:\n${tail(kubelet?.logs(), charsMax)}\npod output:\n${outputs}\ncontrol plane:\n${tail(controlPlane?.logs(), charsMax)}`;
}
