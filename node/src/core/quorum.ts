/**
 * Quorum arithmetic and replica selection, as pure functions so every case can be tested
 * exhaustively. A tracker answers one question for a set of replies: is the request still
 * pending, met, or impossible to meet?
 */
import { merge, objectDescends, type VersionOptions } from './dvv';
import type { PreferenceList } from './partition';
import type { NodeId, VersionedObject } from './version';

export type QuorumSpec = number | 'one' | 'quorum' | 'all';
export type QuorumOutcome = 'pending' | 'met' | 'failed';

export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** Parses a query value ("2", "one", "quorum", "all"); undefined for anything else. */
export function parseQuorumSpec(text: string): QuorumSpec | undefined {
  if (text === 'one' || text === 'quorum' || text === 'all') return text;
  if (/^[0-9]{1,3}$/.test(text)) return Number(text);
  return undefined;
}

export function resolveQuorum(spec: QuorumSpec, n: number): number {
  if (spec === 'one') return 1;
  if (spec === 'quorum') return majority(n);
  if (spec === 'all') return n;
  return spec;
}

export interface WriteRequirement {
  readonly w: number;
  readonly dw: number;
  readonly pw: number;
}

export interface ReadRequirement {
  readonly r: number;
  readonly pr: number;
}

/** Checks values against N; returns a message naming the bad parameter, or undefined. */
export function validateWrite(req: WriteRequirement, n: number): string | undefined {
  if (req.w < 1 || req.w > n) return `w=${req.w} must be between 1 and N=${n}`;
  if (req.dw < 0 || req.dw > req.w) return `dw=${req.dw} must be between 0 and w=${req.w}`;
  if (req.pw < 0 || req.pw > n) return `pw=${req.pw} must be between 0 and N=${n}`;
  return undefined;
}

export function validateRead(req: ReadRequirement, n: number): string | undefined {
  if (req.r < 1 || req.r > n) return `r=${req.r} must be between 1 and N=${n}`;
  if (req.pr < 0 || req.pr > n) return `pr=${req.pr} must be between 0 and N=${n}`;
  return undefined;
}

export interface WriteAck {
  readonly durable: boolean;
  readonly primary: boolean;
}

/** `outstanding` are the targets that have not answered yet (true = primary). */
export function writeOutcome(req: WriteRequirement, acks: readonly WriteAck[], outstanding: readonly boolean[]): QuorumOutcome {
  const count = acks.length;
  const durable = acks.filter((a) => a.durable).length;
  const primary = acks.filter((a) => a.primary).length;
  if (count >= req.w && durable >= req.dw && primary >= req.pw) return 'met';
  const best = { count: count + outstanding.length, durable: durable + outstanding.length, primary: primary + outstanding.filter(Boolean).length };
  if (best.count < req.w || best.durable < req.dw || best.primary < req.pw) return 'failed';
  return 'pending';
}

export function readOutcome(req: ReadRequirement, replies: readonly { primary: boolean }[], outstanding: readonly boolean[]): QuorumOutcome {
  const primary = replies.filter((r) => r.primary).length;
  if (replies.length >= req.r && primary >= req.pr) return 'met';
  if (replies.length + outstanding.length < req.r || primary + outstanding.filter(Boolean).length < req.pr) return 'failed';
  return 'pending';
}

export interface ReplicaTarget {
  readonly node: NodeId;
  /** Set when this node stands in for an unreachable primary (sloppy quorum). */
  readonly hintFor?: NodeId;
}

/**
 * The first N healthy nodes of the preference list: live primaries, and for each unreachable
 * primary the next live fallback, which keeps the data with a hint naming that primary.
 */
export function selectWriteTargets(list: PreferenceList, isUp: (node: NodeId) => boolean): ReplicaTarget[] {
  const targets: ReplicaTarget[] = [];
  const spare = list.fallbacks.filter(isUp);
  for (const primary of list.primaries) {
    if (isUp(primary)) targets.push({ node: primary });
    else {
      const stand = spare.shift();
      if (stand !== undefined) targets.push({ node: stand, hintFor: primary });
    }
  }
  return targets;
}

/** Where to read: live primaries first, then live fallbacks up to N nodes in total. */
export function selectReadTargets(list: PreferenceList, isUp: (node: NodeId) => boolean, primariesOnly: boolean): ReplicaTarget[] {
  const primaries = list.primaries.filter(isUp).map((node) => ({ node }));
  if (primariesOnly) return primaries;
  const missing = list.primaries.length - primaries.length;
  return [...primaries, ...list.fallbacks.filter(isUp).slice(0, missing).map((node) => ({ node }))];
}

export interface ReadReply {
  readonly node: NodeId;
  /** undefined when the replica has never seen the key. */
  readonly object: VersionedObject | undefined;
}

/**
 * Merges replies by causality and names the replicas that need the merged state (read repair).
 * `mergeObjects` is core merge; the simulator passes a broken one to prove its checker works.
 */
export function resolveRead(
  replies: readonly ReadReply[],
  options: VersionOptions,
  mergeObjects: (a: VersionedObject, b: VersionedObject, options: VersionOptions) => VersionedObject = merge,
): { merged: VersionedObject | undefined; stale: NodeId[] } {
  let merged: VersionedObject | undefined;
  for (const reply of replies) {
    if (reply.object === undefined) continue;
    merged = merged === undefined ? reply.object : mergeObjects(merged, reply.object, options);
  }
  if (merged === undefined) return { merged, stale: [] };
  const stale = replies.filter((r) => r.object === undefined || !objectDescends(r.object, merged)).map((r) => r.node);
  return { merged, stale };
}
