/**
 * Leader election over a coordination.k8s.io/v1 Lease, decided as a pure function (the adapter in
 * leaderElection.ts reads and writes the Lease). The rules follow client-go's leaderelection:
 *
 * - A lease held by someone else is respected until leaseDurationSeconds have passed since this
 *   process last saw the record change. Expiry is measured on this process's own clock from its
 *   own observation, never by comparing renewTime with the local clock, so clock skew between
 *   machines cannot make two leaders.
 * - A lease with an empty holder was released on purpose (a leader stopping on SIGTERM) and may
 *   be taken at once.
 * - Every write carries the resourceVersion it was based on: of two candidates that both decided
 *   to take an expired lease, the API server lets exactly one succeed.
 */

export interface LeaseRecord {
  readonly holderIdentity?: string;
  readonly leaseDurationSeconds?: number;
  readonly acquireTime?: string;
  readonly renewTime?: string;
  readonly leaseTransitions?: number;
}

export interface ElectionMemory {
  /** The record as last seen, as a string, to notice any change. */
  readonly observedKey: string | undefined;
  /** Local time at which the record was last seen to change. */
  readonly observedAtMs: number;
}

export type LeaseStep =
  | { readonly kind: 'create'; readonly record: LeaseRecord }
  | { readonly kind: 'update'; readonly record: LeaseRecord; readonly acquiring: boolean }
  | { readonly kind: 'wait'; readonly holder: string; readonly expiresInMs: number };

export const INITIAL_MEMORY: ElectionMemory = { observedKey: undefined, observedAtMs: 0 };

/** MicroTime as the API server expects it: RFC 3339 with exactly six fractional digits. */
export function microTime(nowMs: number): string {
  return new Date(nowMs).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function recordKey(record: LeaseRecord): string {
  return JSON.stringify([record.holderIdentity ?? '', record.renewTime ?? '', record.acquireTime ?? '', record.leaseTransitions ?? 0, record.leaseDurationSeconds ?? 0]);
}

export function leaseStep(
  current: LeaseRecord | undefined,
  memory: ElectionMemory,
  identity: string,
  leaseDurationSeconds: number,
  nowMs: number,
): { readonly step: LeaseStep; readonly memory: ElectionMemory } {
  const now = microTime(nowMs);
  if (current === undefined) {
    const record = { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 };
    return { step: { kind: 'create', record }, memory: { observedKey: recordKey(record), observedAtMs: nowMs } };
  }
  const key = recordKey(current);
  const seen = key === memory.observedKey ? memory : { observedKey: key, observedAtMs: nowMs };
  const holder = current.holderIdentity ?? '';
  const durationMs = (current.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
  const expiresInMs = seen.observedAtMs + durationMs - nowMs;
  if (holder !== '' && holder !== identity && expiresInMs > 0) return { step: { kind: 'wait', holder, expiresInMs }, memory: seen };
  const acquiring = holder !== identity;
  const record: LeaseRecord = {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: acquiring ? now : (current.acquireTime ?? now),
    renewTime: now,
    leaseTransitions: (current.leaseTransitions ?? 0) + (acquiring ? 1 : 0),
  };
  return { step: { kind: 'update', record, acquiring }, memory: { observedKey: recordKey(record), observedAtMs: nowMs } };
}

/** The record a stopping leader writes so a standby need not wait for expiry. */
export function releasedRecord(current: LeaseRecord, nowMs: number): LeaseRecord {
  return { ...current, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(nowMs) };
}
