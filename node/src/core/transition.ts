/**
 * Membership changes with handoff: a join or leave does not switch the plan at once. It records
 * the plan it leads to and one transfer per (partition, new owner) slot, and the ring keeps
 * serving with the current plan until every transfer is done; then the claimant commits.
 *
 * While a change is pending, writes for a partition also go to its incoming owners (an extra
 * copy that does not count towards quorum), so nothing written during the stream is missed by
 * the node that will own the partition. One change at a time keeps this simple and safe.
 */
import { planRing, planTransfers } from './partition';
import { activeMembers, findMember, type Member, type RingChange, type RingState, type Transfer } from './ring';
import type { NodeId } from './version';

function sortMembers(members: readonly Member[]): Member[] {
  return [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Owners of the next plan: every member that is neither leaving nor gone. */
function nextOwners(members: readonly Member[]): NodeId[] {
  return members.filter((m) => m.state === 'normal' || m.state === 'joining').map((m) => m.id);
}

/**
 * Starts a change to `members`: plans the next ring and the transfers it needs. The sender of
 * each transfer is a current owner: a leaving one if there is one (its copy goes away anyway),
 * else one chosen by partition number, so the streams of a join come from every old owner. With nothing to move it commits at once.
 */
function begin(ring: RingState, members: Member[]): RingChange {
  const sorted = sortMembers(members);
  const plan = planRing(ring.plan, nextOwners(sorted), ring.partitionCount, ring.replicationFactor);
  const leaving = new Set(sorted.filter((m) => m.state === 'leaving').map((m) => m.id));
  const version = ring.version + 1;
  const transfers: Transfer[] = [];
  for (const t of planTransfers(ring.plan, plan)) {
    // Rotating over the owners by partition spreads a join's streams over every old owner.
    const from = t.from.find((id) => leaving.has(id)) ?? t.from[t.partition % Math.max(1, t.from.length)];
    // A partition nobody holds yet (a ring growing past its member count) has nothing to send.
    if (from === undefined) continue;
    transfers.push({ id: `${version}-${t.partition}-${t.to}`, partition: t.partition, from, to: t.to, state: 'waiting' });
  }
  const next: RingState = { ...ring, version, members: sorted, pending: { plan, transfers } };
  return { ok: true, ring: transfers.length === 0 ? commit(next) : next };
}

/**
 * How a refusal because another change is pending begins. The API recognises it (also when it
 * comes back from the claimant as a peer error) to add Retry-After: it is the one conflict that
 * goes away by itself.
 */
export const CHANGE_PENDING_MESSAGE_PREFIX = 'a membership change is in progress';

export function isChangePendingMessage(message: string): boolean {
  return message.startsWith(CHANGE_PENDING_MESSAGE_PREFIX);
}

/** The members change starts only when no other change is pending. */
function busy(ring: RingState): RingChange | undefined {
  if (ring.pending === undefined) return undefined;
  const waiting = ring.pending.transfers.filter((t) => t.state === 'waiting').length;
  return { ok: false, error: 'CHANGE_PENDING', message: `${CHANGE_PENDING_MESSAGE_PREFIX} (${waiting} of ${ring.pending.transfers.length} transfers waiting); retry when it is done` };
}

/** Adds a member as 'joining' (or updates a known member's addresses, which moves no data). */
export function beginJoin(ring: RingState, member: Omit<Member, 'state'>): RingChange {
  const existing = findMember(ring, member.id);
  if (existing && existing.state !== 'left') {
    // The same node asking again is a join whose answer it never got (a timeout, a crash):
    // answering with the ring as it is lets it adopt that ring, where a refusal would strand a
    // member the ring counts on but that never learns it belongs.
    if (existing.clientUrl === member.clientUrl && existing.peerUrl === member.peerUrl) return { ok: true, ring };
    const members = ring.members.map((m) => (m.id === member.id ? { ...m, clientUrl: member.clientUrl, peerUrl: member.peerUrl } : m));
    return { ok: true, ring: { ...ring, version: ring.version + 1, members } };
  }
  const conflict = busy(ring);
  if (conflict !== undefined) return conflict;
  return begin(ring, [...ring.members.filter((m) => m.id !== member.id), { ...member, state: 'joining' }]);
}

/** Marks a member 'leaving'; it becomes 'left' only when the change commits. */
export function beginLeave(ring: RingState, id: NodeId): RingChange {
  const existing = findMember(ring, id);
  if (!existing || existing.state === 'left') return { ok: false, error: 'NOT_A_MEMBER', message: `${id} is not a member` };
  const conflict = busy(ring);
  if (conflict !== undefined) return conflict;
  if (activeMembers(ring).length === 1) return { ok: false, error: 'LAST_MEMBER', message: 'the last member of a ring cannot leave' };
  return begin(
    ring,
    ring.members.map((m) => (m.id === id ? { ...m, state: 'leaving' as const } : m)),
  );
}

/** Records a finished transfer; the last one commits the change. Unknown or repeated ids change nothing. */
export function completeTransfer(ring: RingState, transferId: string): RingChange {
  const pending = ring.pending;
  const transfer = pending?.transfers.find((t) => t.id === transferId);
  if (pending === undefined || transfer === undefined || transfer.state === 'done') return { ok: true, ring };
  const transfers = pending.transfers.map((t) => (t.id === transferId ? { ...t, state: 'done' as const } : t));
  const next: RingState = { ...ring, version: ring.version + 1, pending: { ...pending, transfers } };
  return { ok: true, ring: transfers.every((t) => t.state === 'done') ? commit(next) : next };
}

/** What an abort dropped: the members the change was about and how far its transfers had got. */
export interface AbortedChange {
  readonly joining: readonly NodeId[];
  readonly leaving: readonly NodeId[];
  readonly transfers: number;
  readonly transfersDone: number;
}

/**
 * Drops the pending change (an operator's way out when a sender or receiver is gone for good):
 * the committed plan stays in force, leaving members are normal again, and joining members
 * become left, as if their join had never been accepted (they drop what they received, and join
 * again only when started with an empty data directory). Nothing is lost: until a commit the
 * current owners receive every write and keep all their data; copies the incoming owners
 * received are dropped by handoff cleanup, since the plan does not give them those partitions.
 * Without a pending change this changes nothing.
 */
export function abortChange(ring: RingState): { ring: RingState; aborted: AbortedChange | undefined } {
  const pending = ring.pending;
  if (pending === undefined) return { ring, aborted: undefined };
  const aborted: AbortedChange = {
    joining: ring.members.filter((m) => m.state === 'joining').map((m) => m.id),
    leaving: ring.members.filter((m) => m.state === 'leaving').map((m) => m.id),
    transfers: pending.transfers.length,
    transfersDone: pending.transfers.filter((t) => t.state === 'done').length,
  };
  const members = ring.members.map((m) => (m.state === 'joining' ? { ...m, state: 'left' as const } : m.state === 'leaving' ? { ...m, state: 'normal' as const } : m));
  const { pending: _dropped, ...rest } = ring;
  return { ring: { ...rest, version: ring.version + 1, members }, aborted };
}

/** The next plan takes effect: joiners become normal, leavers left. Same version as its input. */
export function commit(ring: RingState): RingState {
  if (ring.pending === undefined) return ring;
  const members = ring.members.map((m) => (m.state === 'joining' ? { ...m, state: 'normal' as const } : m.state === 'leaving' ? { ...m, state: 'left' as const } : m));
  const { pending: _done, ...rest } = ring;
  return { ...rest, members, plan: ring.pending.plan };
}

/**
 * Nodes that receive writes for `partition` beyond its preference list while a change is
 * pending: the incoming owners. Done transfers count too, since the receiver is not a primary
 * until the commit, and a write it missed after its stream ended would otherwise be lost to it.
 */
export function incomingOwners(ring: RingState, partition: number): NodeId[] {
  if (ring.pending === undefined) return [];
  const current = ring.plan.owners[partition] ?? [];
  return ring.pending.transfers.filter((t) => t.partition === partition && !current.includes(t.to)).map((t) => t.to);
}

/** Transfers still to be streamed. */
export function waitingTransfers(ring: RingState): Transfer[] {
  return ring.pending === undefined ? [] : ring.pending.transfers.filter((t) => t.state === 'waiting');
}

/**
 * May this node drop its copy of `partition`? Only when the committed plan does not list it as an
 * owner and no pending change is bringing the partition to it.
 */
export function mayDropPartition(ring: RingState, self: NodeId, partition: number): boolean {
  if ((ring.plan.owners[partition] ?? []).includes(self)) return false;
  if (ring.pending !== undefined && ring.pending.plan.owners[partition]?.includes(self)) return false;
  return true;
}
