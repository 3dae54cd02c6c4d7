/**
 * When may a tombstone be reaped (removed from storage for good)? The pure decisions of the
 * reaper (cluster/reaper.ts) and of anti-entropy's treatment of old tombstones.
 *
 * A delete is a tombstone sibling. Keeping it forever costs storage; removing it too early lets
 * an old copy of the deleted value, still held somewhere, come back: anti-entropy, read repair,
 * hint delivery or handoff would spread that copy to replicas that no longer hold anything to
 * supersede it. So a tombstone T of a key is reaped by a replica only when all of these hold:
 *
 * 1. T is old: every sibling is a delete written at least `graceMs` ago (coordinator clocks), so
 *    messages that were in flight when it was written are long settled.
 * 2. The partition is stable: this node owns it in the committed plan and no pending membership
 *    change moves it (no transfer is streaming it and the next plan gives it the same owners).
 * 3. Every active member of the ring (not only the key's replicas) is up and answered a read of
 *    the key with nothing or with exactly T. A member holding an older value (a replica that was
 *    down during the delete, a fallback holding a hinted copy, an old owner that has not dropped
 *    the partition yet) blocks the reap until anti-entropy or hint delivery replaced its copy.
 *    Asking every member, not only the N primaries, is what covers hinted copies on fallbacks:
 *    a hinted copy lives in the fallback's data range, so a read finds it.
 * 4. This node holds no hint in the partition (its hinted copies are not yet delivered).
 *
 * Because (3) needs every member to answer, nothing is reaped while any member is down, so a
 * node that comes back after an outage of any length finds every tombstone that could supersede
 * its stale copies still in place. "Nothing" is an acceptable answer in (3): a replica without
 * the key holds no value to resurrect (it may have reaped T already, which is how the last
 * replicas get to reap). The residual risks are copies the reaper cannot see: data restored from
 * a backup older than the reap, or a member removed from the ring while down that later returns
 * with its old data; see docs/architecture.md.
 */
import { equalObjects, isTombstoned } from './dvv';
import { activeMembers, type RingState } from './ring';
import type { NodeId, VersionedObject } from './version';

/** Why a tombstone (or a whole partition) is not reaped now. */
export type ReapBlocker =
  | 'not-a-tombstone'
  | 'within-grace'
  | 'not-an-owner'
  | 'change-pending'
  | 'member-down'
  | 'hint-pending'
  | 'replica-unanswered'
  | 'replica-differs';

export type ReapVerdict = { readonly reap: true } | { readonly reap: false; readonly blocker: ReapBlocker };

/** One member's answer to "what do you hold for this key?"; `failed` when it did not answer. */
export type ReplicaAnswer = { readonly node: NodeId; readonly failed: true } | { readonly node: NodeId; readonly failed?: false; readonly object: VersionedObject | undefined };

/** The key was deleted and every sibling of the delete is at least `graceMs` old. */
export function tombstoneOldEnough(object: VersionedObject, nowMs: number, graceMs: number): boolean {
  return isTombstoned(object) && object.siblings.every((s) => s.lastModifiedMs + graceMs <= nowMs);
}

/** Members whose copies must be confirmed: every active member but `self`, in ring order. */
export function membersToConfirm(ring: RingState, self: NodeId): NodeId[] {
  return activeMembers(ring)
    .map((m) => m.id)
    .filter((id) => id !== self);
}

/**
 * Conditions (2) and the liveness half of (3) for one partition, before any key is looked at.
 * `isUp` is this node's judgement of a member's liveness.
 */
export function partitionBlocker(ring: RingState, self: NodeId, partition: number, isUp: (id: NodeId) => boolean): ReapBlocker | undefined {
  const owners = ring.plan.owners[partition] ?? [];
  if (!owners.includes(self)) return 'not-an-owner';
  const pending = ring.pending;
  if (pending !== undefined) {
    if (pending.transfers.some((t) => t.partition === partition)) return 'change-pending';
    const next = pending.plan.owners[partition] ?? [];
    if (next.length !== owners.length || next.some((id) => !owners.includes(id))) return 'change-pending';
  }
  if (membersToConfirm(ring, self).some((id) => !isUp(id))) return 'member-down';
  return undefined;
}

/**
 * Conditions (1) and (3) for one key: `local` is this node's copy, `answers` what the other
 * members hold (one answer per member of `expected`, in any order).
 */
export function reapVerdict(local: VersionedObject, answers: readonly ReplicaAnswer[], expected: readonly NodeId[], nowMs: number, graceMs: number): ReapVerdict {
  if (!isTombstoned(local)) return { reap: false, blocker: 'not-a-tombstone' };
  if (!tombstoneOldEnough(local, nowMs, graceMs)) return { reap: false, blocker: 'within-grace' };
  for (const node of expected) {
    const answer = answers.find((a) => a.node === node);
    if (answer === undefined || answer.failed === true) return { reap: false, blocker: 'replica-unanswered' };
    if (answer.object !== undefined && !equalObjects(answer.object, local)) return { reap: false, blocker: 'replica-differs' };
  }
  return { reap: true };
}

/**
 * Should a repair copy `object` to a replica that holds nothing for its key? Not when it is a
 * tombstone past its grace period: the reapers are removing it, and a replica without the key
 * holds no value it could bring back, so the copy would only undo a reap already done (and the
 * replicas could pass the tombstone around for ever instead of letting it go).
 */
export function worthCopyingToEmptyReplica(object: VersionedObject, nowMs: number, graceMs: number | undefined): boolean {
  return graceMs === undefined || !tombstoneOldEnough(object, nowMs, graceMs);
}
