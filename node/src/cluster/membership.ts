/**
 * Membership: this node's copy of the ring, gossip, heartbeats and liveness.
 *
 * - The ring (core/ring.ts) is persisted in the node's own storage, so a restart keeps it.
 * - Every gossip interval the node pings every member (at most 32 a round, rotating, in larger
 *   clusters: a heartbeat for phi accrual) and gossips with one random member: ring digests
 *   first, the whole ring only to the side that is behind; the newer version wins (mergeRings).
 * - Joins and leaves are explicit. A join request goes to any member, which forwards it to the
 *   claimant (the lowest-id normal member), the one node that changes the ring; this keeps ring
 *   versions on a single history.
 * - Liveness is local: phi accrual over heartbeats, and any failed call to a node counts as
 *   evidence until the next successful reply.
 */
import { DEFAULT_PHI_OPTIONS, PhiAccrualDetector, type PhiOptions } from '../core/phi';
import { activeMembers, addMember, claimant, compareDigests, createRing, findMember, mergeRings, ownershipShares, removeMember, ringDigest, setBucketProps, type BucketProps, type Member, type RingChange, type RingState } from '../core/ring';
import { abortChange, beginJoin, beginLeave, completeTransfer, isChangePendingMessage, type AbortedChange } from '../core/transition';
import type { StorageEngine } from '../storage/engine';
import { metaKey } from '../storage/keys';
import { PeerCallError, type PeerTransport } from '../transport/peerClient';
import { decodeRing, packMessage, unpackMessage, type GossipRequest, type GossipResponse } from '../transport/peerMessages';
import { every, type Runtime } from './runtime';

export interface MembershipOptions {
  readonly self: Omit<Member, 'state'>;
  readonly partitionCount: number;
  readonly replicationFactor: number;
  readonly gossipIntervalMs: number;
  readonly peerTimeoutMs: number;
  readonly phi?: PhiOptions;
  /**
   * true: joins and leaves go through a pending change whose partitions are streamed (handoff)
   * before the plan moves on; false: the plan changes at once and data follows by repair.
   */
  readonly handoff?: boolean;
}

export interface MemberView extends Member {
  readonly up: boolean;
  readonly phi: number;
  readonly lastHeartbeatMsAgo: number | null;
  readonly ownership: number;
  readonly self: boolean;
}

/** A coded failure of a membership operation; the API maps `code` through the error catalogue. */
export class MembershipError extends Error {
  constructor(
    readonly code: 'MEMBERSHIP_CONFLICT' | 'QUORUM_UNAVAILABLE' | 'PARAMETER_INVALID',
    message: string,
  ) {
    super(message);
    this.name = 'MembershipError';
  }
}

const RING_META = 'ring';
/** Heartbeats one node sends per gossip round at most (see pingTargets). */
const PINGS_PER_ROUND_MAX = 32;
/** Present once this node was admitted to a cluster (init or join): the operator's readiness gate. */
const ADMITTED_META = 'admitted';
/** How often an admin join or leave that may wait asks again whether the pending change is done. */
const CHANGE_POLL_MS = 250;
/** The longest wait an admin join or leave may ask for (`waitMs`). */
export const CHANGE_WAIT_MS_MAX = 300_000;

/** How long an admin join or leave waits while another membership change is pending. */
export interface ChangeWaitOptions {
  /** 0 (the default): refuse at once with MEMBERSHIP_CONFLICT; at most CHANGE_WAIT_MS_MAX. */
  readonly waitMs?: number;
}

export class Membership {
  private current!: RingState;
  private admittedFlag = false;
  private pingCursor = 0;
  private readonly detectors = new Map<string, PhiAccrualDetector>();
  private readonly lastFailureMs = new Map<string, number>();
  private stopLoop: () => void = () => undefined;
  private readonly listeners: ((ring: RingState) => void)[] = [];
  private updates: Promise<void> = Promise.resolve();

  constructor(
    private readonly engine: StorageEngine,
    private readonly transport: PeerTransport,
    private readonly runtime: Runtime,
    private readonly options: MembershipOptions,
    private readonly onError: (what: string, error: unknown) => void,
  ) {}

  get selfId(): string {
    return this.options.self.id;
  }

  ring(): RingState {
    return this.current;
  }

  onRingChange(listener: (ring: RingState) => void): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    this.admittedFlag = (await this.engine.get(metaKey(ADMITTED_META))) !== undefined;
    const stored = await this.engine.get(metaKey(RING_META));
    if (stored !== undefined) {
      this.current = decodeRing(unpackMessage(stored));
      await this.refreshSelfAddress();
    } else {
      const clusterId = Math.floor(this.runtime.random() * 2 ** 48).toString(16).padStart(12, '0');
      await this.adopt(createRing(clusterId, this.options.self, this.options.partitionCount, this.options.replicationFactor));
    }
    // Ping at once, so a restarted node knows who is up before its first client request.
    this.tick().catch((e) => this.onError('gossip', e));
    this.stopLoop = every(this.runtime, this.options.gossipIntervalMs, () => this.tick(), (e) => this.onError('gossip', e));
  }

  stop(): void {
    this.stopLoop();
  }

  /** Is `id` reachable in this node's judgement? This node is always up to itself. */
  isUp(id: string): boolean {
    if (id === this.selfId) return true;
    const detector = this.detectors.get(id);
    if (detector === undefined) return false;
    const now = this.runtime.nowMs();
    const failedAt = this.lastFailureMs.get(id);
    if (failedAt !== undefined && failedAt >= (detector.lastHeartbeatAtMs ?? 0)) return false;
    return detector.isAvailable(now);
  }

  /** Evidence from any call: a reply is a heartbeat, an unreachable peer a failure. */
  recordReply(id: string): void {
    this.detectorFor(id).heartbeat(this.runtime.nowMs());
    this.lastFailureMs.delete(id);
  }

  recordFailure(id: string): void {
    this.lastFailureMs.set(id, this.runtime.nowMs());
  }

  member(id: string): Member | undefined {
    return findMember(this.current, id);
  }

  members(): MemberView[] {
    const shares = ownershipShares(this.current);
    const now = this.runtime.nowMs();
    return this.current.members.map((m) => {
      const detector = this.detectors.get(m.id);
      const last = detector?.lastHeartbeatAtMs;
      return {
        ...m,
        self: m.id === this.selfId,
        up: this.isUp(m.id),
        phi: m.id === this.selfId || detector === undefined ? 0 : Math.round(detector.phi(now) * 100) / 100,
        lastHeartbeatMsAgo: m.id === this.selfId ? 0 : last === undefined ? null : now - last,
        ownership: shares[m.id] ?? 0,
      };
    });
  }

  // ---- peer handlers ----

  /**
   * A partner's gossip: a whole ring is merged; a digest is compared, and this node's ring goes
   * back only when it is the newer one. Either way the answer carries this node's digest, so a
   * partner with the newer ring knows to push it.
   */
  async handleGossip(request: GossipRequest): Promise<GossipResponse> {
    if (request.ring !== undefined) {
      await this.absorb(request.ring);
      const mine = ringDigest(this.current);
      return compareDigests(mine, ringDigest(request.ring)) > 0 ? { digest: mine, ring: this.current } : { digest: mine };
    }
    if (request.digest.clusterId !== this.current.clusterId) throw new MembershipError('MEMBERSHIP_CONFLICT', 'the other node belongs to a different cluster');
    const mine = ringDigest(this.current);
    return compareDigests(mine, request.digest) > 0 ? { digest: mine, ring: this.current } : { digest: mine };
  }

  async handleJoin(member: Omit<Member, 'state'>, config?: { partitionCount: number; replicationFactor: number }): Promise<RingState> {
    // A node configured for another Q or N must be refused before it is added to the ring.
    if (config !== undefined && (config.partitionCount !== this.current.partitionCount || config.replicationFactor !== this.current.replicationFactor)) {
      throw new MembershipError(
        'MEMBERSHIP_CONFLICT',
        `${member.id} is configured with Q=${config.partitionCount} N=${config.replicationFactor}; this cluster has Q=${this.current.partitionCount} N=${this.current.replicationFactor}`,
      );
    }
    const request = { member, ...(config === undefined ? {} : config) };
    const change = () => (this.options.handoff === true ? beginJoin(this.current, member) : addMember(this.current, member));
    return this.changeAtClaimant(change, (url) => this.transport.call(url, 'join', request, this.options.peerTimeoutMs));
  }

  async handleLeave(id: string): Promise<RingState> {
    const change = () => (this.options.handoff === true ? beginLeave(this.current, id) : removeMember(this.current, id));
    return this.changeAtClaimant(change, (url) => this.transport.call(url, 'leave', { id }, this.options.peerTimeoutMs));
  }

  /** A sender reports a finished transfer; the claimant records it (and commits after the last). */
  async handleHandoffDone(transferId: string, forwarded = false): Promise<RingState> {
    // A forwarded report is not forwarded again: two nodes that each think the other is the
    // claimant (one has not heard that the claimant left) would pass it back and forth.
    const claimantId = claimant(this.current);
    if (forwarded && claimantId !== this.selfId) throw new MembershipError('QUORUM_UNAVAILABLE', `${this.selfId} is not the claimant in ring version ${this.current.version}; retry later`);
    return this.changeAtClaimant(() => completeTransfer(this.current, transferId), (url) => this.transport.call(url, 'handoffDone', { transferId }, this.options.peerTimeoutMs));
  }

  async handleBucketProps(bucket: string, props: BucketProps): Promise<RingState> {
    return this.changeAtClaimant(() => setBucketProps(this.current, bucket, props), (url) => this.transport.call(url, 'bucketProps', { bucket, props }, this.options.peerTimeoutMs));
  }

  // ---- admin operations ----

  /**
   * Joins the cluster that `seedPeerUrl` belongs to; this node's own ring is replaced. A node that
   * left (or whose join was aborted) keeps that ring and is refused: its data directory may hold
   * stale copies, so it joins again only when started with an empty one (as a new life of its id).
   */
  async join(seedPeerUrl: string, wait: ChangeWaitOptions = {}): Promise<RingState> {
    if (activeMembers(this.current).length > 1) throw new MembershipError('MEMBERSHIP_CONFLICT', `${this.selfId} is already in a cluster; leave it first`);
    const request = { member: this.options.self, partitionCount: this.options.partitionCount, replicationFactor: this.options.replicationFactor };
    const ring = await this.whileChangePending(async () => (await this.transport.call(seedPeerUrl, 'join', request, this.options.peerTimeoutMs)).ring, wait);
    // The seed answered with this node's own cluster: the seed is this node, or one it already joined.
    if (ring.clusterId === this.current.clusterId) throw new MembershipError('MEMBERSHIP_CONFLICT', `${this.selfId} is already a member of the seed's cluster`);
    if (ring.partitionCount !== this.options.partitionCount || ring.replicationFactor !== this.options.replicationFactor) {
      throw new MembershipError('MEMBERSHIP_CONFLICT', `the seed's cluster has Q=${ring.partitionCount} N=${ring.replicationFactor}, this node Q=${this.options.partitionCount} N=${this.options.replicationFactor}`);
    }
    await this.adopt(ring);
    await this.admit();
    return ring;
  }

  /**
   * Makes this node the founding member of a new cluster: it keeps its own ring and counts as
   * admitted. Idempotent, and harmless on a node that already joined a cluster: nothing changes.
   */
  async init(): Promise<RingState> {
    await this.admit();
    return this.current;
  }

  /** Was this node admitted to a cluster (POST /v1/admin/init, or a join), in this life or an earlier one? */
  admitted(): boolean {
    // A node the ring already counts among several active members was admitted, even if a crash
    // came between adopting the ring and persisting the flag.
    return this.admittedFlag || (activeMembers(this.current).length > 1 && findMember(this.current, this.selfId) !== undefined);
  }

  private async admit(): Promise<void> {
    if (this.admittedFlag) return;
    await this.engine.put(metaKey(ADMITTED_META), new Uint8Array([1]), { sync: true });
    this.admittedFlag = true;
  }

  async leave(id: string, wait: ChangeWaitOptions = {}): Promise<RingState> {
    return this.whileChangePending(() => this.handleLeave(id), wait);
  }

  /**
   * Drops the pending membership change (core/transition.ts abortChange) at the claimant, for a
   * change whose sender or receiver is gone for good. Without a pending change nothing changes
   * and `aborted` is undefined. `forwarded`: the call came from another node, which already
   * took this node for the claimant, so it is not passed on again.
   */
  async abort(forwarded = false): Promise<{ ring: RingState; aborted: AbortedChange | undefined }> {
    const claimantId = claimant(this.current);
    if (claimantId !== undefined && claimantId !== this.selfId) {
      if (forwarded) throw new MembershipError('QUORUM_UNAVAILABLE', `${this.selfId} is not the claimant in ring version ${this.current.version}; retry later`);
      const target = findMember(this.current, claimantId)!;
      const answer = await this.transport.call(target.peerUrl, 'abort', {}, this.options.peerTimeoutMs);
      await this.absorb(answer.ring);
      return { ring: this.current, aborted: answer.aborted ?? undefined };
    }
    return this.serially(async () => {
      const { ring, aborted } = abortChange(this.current);
      if (aborted !== undefined) await this.adopt(ring);
      return { ring: this.current, aborted };
    });
  }

  /**
   * With handoff one membership change runs at a time. An admin join or leave that arrives while
   * another streams is refused at once, or, when the caller asked for it (`waitMs`), retried
   * until that change is done or the wait is over. Either way the refusal is a
   * MEMBERSHIP_CONFLICT whose message says a change is in progress (the API adds Retry-After),
   * also when it came back from the claimant through another node as a peer error.
   */
  private async whileChangePending<T>(attempt: () => Promise<T>, wait: ChangeWaitOptions): Promise<T> {
    const waitMs = Math.min(Math.max(0, wait.waitMs ?? 0), CHANGE_WAIT_MS_MAX);
    const deadlineMs = this.runtime.nowMs() + waitMs;
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (!isChangePendingMessage(message)) throw error;
        if (this.options.handoff !== true || this.runtime.nowMs() >= deadlineMs) throw new MembershipError('MEMBERSHIP_CONFLICT', message);
        await new Promise<void>((resolve) => this.runtime.schedule(resolve, CHANGE_POLL_MS));
      }
    }
  }

  // ---- internals ----

  private async changeAtClaimant(change: () => RingChange, forward: (claimantPeerUrl: string) => Promise<{ ring: RingState }>): Promise<RingState> {
    const claimantId = claimant(this.current);
    if (claimantId !== undefined && claimantId !== this.selfId) {
      const target = findMember(this.current, claimantId)!;
      const { ring } = await forward(target.peerUrl);
      await this.absorb(ring);
      return this.current;
    }
    return this.serially(async () => {
      const result = change();
      if (result.ok && result.ring === this.current) return this.current;
      if (!result.ok) throw new MembershipError(result.error === 'LAST_MEMBER' || result.error === 'CHANGE_PENDING' ? 'MEMBERSHIP_CONFLICT' : 'PARAMETER_INVALID', result.message);
      await this.adopt(result.ring);
      return this.current;
    });
  }

  private async absorb(remote: RingState): Promise<void> {
    await this.serially(async () => {
      const merged = mergeRings(this.current, remote);
      if ('error' in merged) throw new MembershipError('MEMBERSHIP_CONFLICT', 'the other node belongs to a different cluster or ring configuration');
      if (merged.changed) await this.adopt(merged.ring);
    });
  }

  /**
   * Ring updates compute from the current ring and then persist it; two interleaved updates
   * (two transfers reported at once, or gossip during a change) would otherwise lose one.
   */
  private serially<T>(update: () => Promise<T>): Promise<T> {
    const run = this.updates.then(update, update);
    this.updates = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async adopt(ring: RingState): Promise<void> {
    const before = new Set(this.current?.members.map((m) => m.id) ?? []);
    await this.engine.put(metaKey(RING_META), packMessage(ring), { sync: true });
    this.current = ring;
    for (const listener of this.listeners) listener(ring);
    // A member this node has never heard from counts as down; ping newcomers at once rather
    // than at the next gossip round, so the first writes after a join find them up.
    const newcomers = ring.members.filter((m) => !before.has(m.id) && m.id !== this.selfId && m.state !== 'left');
    for (const member of newcomers) void this.ping(member);
  }

  /** Does the ring still list this node at addresses it no longer has (it restarted on a new pod IP)? */
  private addressStale(): boolean {
    const me = findMember(this.current, this.selfId);
    return me !== undefined && me.state !== 'left' && (me.clientUrl !== this.options.self.clientUrl || me.peerUrl !== this.options.self.peerUrl);
  }

  /** After a restart on new addresses: the claimant (or a lone node) updates its own entry here. */
  private async refreshSelfAddress(): Promise<void> {
    // The claimant is the one node that changes the ring, so it records its own new address; any
    // other node must ask the claimant (announceAddress), which it can reach at its old address.
    if (!this.addressStale() || (activeMembers(this.current).length !== 1 && claimant(this.current) !== this.selfId)) return;
    const change = addMember(this.current, this.options.self);
    if (change.ok) await this.adopt(change.ring);
  }

  /**
   * Tells the cluster this node's new addresses through `partner`, which passes the join to the
   * claimant; for a member already in the ring a join only replaces its addresses. One attempt
   * per gossip round until the ring shows the new addresses.
   */
  private async announceAddress(partner: Member): Promise<void> {
    const request = { member: this.options.self, partitionCount: this.options.partitionCount, replicationFactor: this.options.replicationFactor };
    const { ring } = await this.transport.call(partner.peerUrl, 'join', request, this.options.peerTimeoutMs);
    await this.absorb(ring);
  }

  private detectorFor(id: string): PhiAccrualDetector {
    let detector = this.detectors.get(id);
    if (detector === undefined) {
      detector = new PhiAccrualDetector(this.options.phi ?? DEFAULT_PHI_OPTIONS);
      this.detectors.set(id, detector);
    }
    return detector;
  }

  private async tick(): Promise<void> {
    const others = this.current.members.filter((m) => m.id !== this.selfId && m.state !== 'left');
    if (others.length === 0) return;
    await Promise.all(this.pingTargets(others).map((m) => this.ping(m)));
    const partner = others[Math.floor(this.runtime.random() * others.length)]!;
    if (this.addressStale()) await this.announceAddress(partner).catch((e) => this.onError('address announcement', e));
    try {
      // A digest first: in a settled cluster every round costs a few dozen bytes, not a whole ring.
      const answer = await this.transport.call(partner.peerUrl, 'gossip', { digest: ringDigest(this.current) }, this.options.peerTimeoutMs);
      this.recordReply(partner.id);
      if (answer.ring !== undefined) await this.absorb(answer.ring);
      else if (compareDigests(ringDigest(this.current), answer.digest) > 0) {
        const pushed = await this.transport.call(partner.peerUrl, 'gossip', { ring: this.current }, this.options.peerTimeoutMs);
        if (pushed.ring !== undefined) await this.absorb(pushed.ring);
      }
    } catch (error) {
      if (error instanceof PeerCallError && error.unreachable) this.recordFailure(partner.id);
      else throw error;
    }
  }

  /**
   * Whom this round pings: everyone in a small cluster; in a large one a rotating window of
   * PINGS_PER_ROUND_MAX members, so heartbeat traffic per node stays bounded instead of growing
   * with the cluster. Phi accrual adapts to the longer interval, and request outcomes still mark a
   * failed peer down at once.
   */
  private pingTargets(others: readonly Member[]): readonly Member[] {
    if (others.length <= PINGS_PER_ROUND_MAX) return others;
    const start = this.pingCursor % others.length;
    this.pingCursor = (start + PINGS_PER_ROUND_MAX) % others.length;
    const window = others.slice(start, start + PINGS_PER_ROUND_MAX);
    return window.length === PINGS_PER_ROUND_MAX ? window : [...window, ...others.slice(0, PINGS_PER_ROUND_MAX - window.length)];
  }

  private async ping(member: Member): Promise<void> {
    try {
      await this.transport.call(member.peerUrl, 'ping', { from: this.selfId }, this.options.peerTimeoutMs);
      this.recordReply(member.id);
    } catch {
      this.recordFailure(member.id);
    }
  }
}
