/**
 * The ring state that nodes gossip: members, their addresses and states, and the partition plan,
 * under one version number. Changes happen on one node at a time (the claimant, the lowest-id
 * normal member, as in Riak), so versions grow along one history; gossip only spreads them.
 * If two nodes ever make different changes at the same version, the state with the larger
 * fingerprint wins everywhere, so the cluster still converges on one ring.
 */
import { murmur3, planRing, type RingPlan } from './partition';
import type { ConflictMode, NodeId } from './version';

export type MemberState = 'joining' | 'normal' | 'leaving' | 'left';

export interface Member {
  readonly id: NodeId;
  /** Base URL of the client API, e.g. http://127.0.0.1:8080. */
  readonly clientUrl: string;
  /** Base URL of the peer API, e.g. http://127.0.0.1:9080. */
  readonly peerUrl: string;
  readonly state: MemberState;
}

/** Per-bucket defaults; unset fields fall back to the node configuration. */
export interface BucketProps {
  readonly r?: number;
  readonly w?: number;
  readonly dw?: number;
  readonly conflictMode?: ConflictMode;
}

export interface RingState {
  /** Chosen when the first node creates the ring; gossip between different clusters is refused. */
  readonly clusterId: string;
  readonly version: number;
  readonly partitionCount: number;
  readonly replicationFactor: number;
  /** Sorted by id. Members that left stay listed so late gossip cannot resurrect them. */
  readonly members: readonly Member[];
  readonly plan: RingPlan;
  /** Bucket properties travel with the ring, so every node applies the same ones. */
  readonly buckets: Readonly<Record<string, BucketProps>>;
  /** A membership change in progress (core/transition.ts): the plan it leads to and its transfers. */
  readonly pending?: PendingChange;
}

export type TransferState = 'waiting' | 'done';

/** One partition copy an incoming owner needs before the next plan can take effect. */
export interface Transfer {
  /** Unique over the ring's history: the version that began the change, the partition, the receiver. */
  readonly id: string;
  readonly partition: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly state: TransferState;
}

export interface PendingChange {
  readonly plan: RingPlan;
  readonly transfers: readonly Transfer[];
}

/** A single node's ring before it joins anything: it owns every partition. */
export function createRing(clusterId: string, self: Omit<Member, 'state'>, partitionCount: number, replicationFactor: number): RingState {
  const members = [{ ...self, state: 'normal' as const }];
  return { clusterId, version: 1, partitionCount, replicationFactor, members, plan: planRing(undefined, [self.id], partitionCount, replicationFactor), buckets: {} };
}

/**
 * N as it applies today: a ring with fewer members than N keeps one copy per member, so quorums
 * are counted against that smaller number (a one-node development cluster accepts writes).
 */
export function effectiveReplicationFactor(ring: RingState): number {
  // A joining member owns nothing until its change commits, so it does not widen quorums yet.
  return Math.min(ring.replicationFactor, ring.members.filter((m) => m.state === 'normal' || m.state === 'leaving').length);
}

/** Members that own data in the plan or are about to (normal, leaving, joining). */
export function activeMembers(ring: RingState): Member[] {
  return ring.members.filter((m) => m.state === 'normal' || m.state === 'leaving' || m.state === 'joining');
}

export function findMember(ring: RingState, id: NodeId): Member | undefined {
  return ring.members.find((m) => m.id === id);
}

/** The node that applies ring changes: the lowest-id normal member. */
export function claimant(ring: RingState): NodeId | undefined {
  return ring.members.find((m) => m.state === 'normal')?.id;
}

export type RingChangeError = 'NOT_A_MEMBER' | 'LAST_MEMBER' | 'CONFIG_MISMATCH' | 'CHANGE_PENDING';

export type RingChange = { ok: true; ring: RingState } | { ok: false; error: RingChangeError; message: string };

/**
 * Adds a member (or updates the addresses of a known one) and re-plans. A member whose id left
 * earlier may join again as a new life of that id.
 */
export function addMember(ring: RingState, member: Omit<Member, 'state'>): RingChange {
  const existing = findMember(ring, member.id);
  if (existing && existing.state !== 'left') {
    // A repeated join of the same node is answered with the ring as it is (see beginJoin).
    if (existing.clientUrl === member.clientUrl && existing.peerUrl === member.peerUrl) return { ok: true, ring };
    return withMembers(ring, ring.members.map((m) => (m.id === member.id ? { ...m, clientUrl: member.clientUrl, peerUrl: member.peerUrl } : m)), false);
  }
  const others = ring.members.filter((m) => m.id !== member.id);
  return withMembers(ring, [...others, { ...member, state: 'normal' }], true);
}

/**
 * Marks a member as left and re-plans without it. Data movement before this step is the
 * handoff protocol's job; this function only changes the ring.
 */
export function removeMember(ring: RingState, id: NodeId): RingChange {
  const existing = findMember(ring, id);
  if (!existing || existing.state === 'left') return { ok: false, error: 'NOT_A_MEMBER', message: `${id} is not a member` };
  if (activeMembers(ring).length === 1) return { ok: false, error: 'LAST_MEMBER', message: 'the last member of a ring cannot leave' };
  return withMembers(ring, ring.members.map((m) => (m.id === id ? { ...m, state: 'left' as const } : m)), true);
}

/** Sets (replaces) one bucket's properties. */
export function setBucketProps(ring: RingState, bucket: string, props: BucketProps): RingChange {
  const buckets = { ...ring.buckets, [bucket]: props };
  const sorted = Object.fromEntries(Object.entries(buckets).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { ok: true, ring: { ...ring, version: ring.version + 1, buckets: sorted } };
}

function withMembers(ring: RingState, members: Member[], replan: boolean): RingChange {
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const owners = sorted.filter((m) => m.state !== 'left').map((m) => m.id);
  const plan = replan ? planRing(ring.plan, owners, ring.partitionCount, ring.replicationFactor) : ring.plan;
  return { ok: true, ring: { ...ring, version: ring.version + 1, members: sorted, plan } };
}

/** A stable digest of a ring, used to break ties between different states of equal version. */
export function ringFingerprint(ring: RingState): number {
  const text = JSON.stringify(ring.pending === undefined ? [ring.version, ring.members, ring.plan.owners, ring.buckets] : [ring.version, ring.members, ring.plan.owners, ring.buckets, ring.pending]);
  return murmur3(new TextEncoder().encode(text));
}

/** What gossip compares before it sends a whole ring: equal digests mean equal rings. */
export interface RingDigest {
  readonly clusterId: string;
  readonly version: number;
  readonly fingerprint: number;
}

// Rings are immutable values, so a digest computed once per ring object stays right; gossip asks
// for the same ring's digest every round.
const digests = new WeakMap<RingState, RingDigest>();

export function ringDigest(ring: RingState): RingDigest {
  let digest = digests.get(ring);
  if (digest === undefined) {
    digest = { clusterId: ring.clusterId, version: ring.version, fingerprint: ringFingerprint(ring) };
    digests.set(ring, digest);
  }
  return digest;
}

/** Orders digests as mergeRings orders rings: by version, then fingerprint (1: a is newer). */
export function compareDigests(a: RingDigest, b: RingDigest): -1 | 0 | 1 {
  if (a.version !== b.version) return a.version > b.version ? 1 : -1;
  if (a.fingerprint !== b.fingerprint) return a.fingerprint > b.fingerprint ? 1 : -1;
  return 0;
}

/**
 * Gossip merge: the newer version wins, ties go to the larger fingerprint. Rings with other
 * partition counts or replication factors belong to another cluster and are refused.
 */
export function mergeRings(local: RingState, remote: RingState): { ring: RingState; changed: boolean } | { error: 'CONFIG_MISMATCH' } {
  if (local.clusterId !== remote.clusterId) return { error: 'CONFIG_MISMATCH' };
  if (local.partitionCount !== remote.partitionCount || local.replicationFactor !== remote.replicationFactor) return { error: 'CONFIG_MISMATCH' };
  if (remote.version > local.version) return { ring: remote, changed: true };
  if (remote.version === local.version && ringFingerprint(remote) > ringFingerprint(local)) return { ring: remote, changed: true };
  return { ring: local, changed: false };
}

/** Each active member's share of partition slots, for status displays. */
export function ownershipShares(ring: RingState): Record<NodeId, number> {
  const total = ring.plan.owners.reduce((sum, list) => sum + list.length, 0);
  const shares: Record<NodeId, number> = {};
  for (const m of activeMembers(ring)) shares[m.id] = 0;
  for (const list of ring.plan.owners) for (const id of list) shares[id] = (shares[id] ?? 0) + 1;
  for (const id of Object.keys(shares)) shares[id] = total === 0 ? 0 : shares[id]! / total;
  return shares;
}
