/**
 * Partitioning and placement (Dynamo's strategy 3): the key space is cut into Q equal partitions
 * fixed at cluster creation, and a plan assigns each partition N distinct owner nodes.
 *
 * Placement is separate from hashing, so membership changes move whole partitions and never
 * re-hash keys. The plan is computed from the previous plan, which is what makes "move the
 * fewest partitions" possible: a join takes exactly its fair share, a leave gives away exactly
 * what the leaver held, and every node ends within one slot of the mean.
 */
import type { NodeId } from './version';

/** Riak's default is 64; 256 leaves room to grow a cluster to ~80 nodes with N=3 and stay balanced. */
export const DEFAULT_PARTITION_COUNT = 256;
export const PARTITION_COUNT_MAX = 65536;
export const DEFAULT_REPLICATION_FACTOR = 3;

export interface RingPlan {
  readonly partitionCount: number;
  readonly replicationFactor: number;
  /** owners[p] = the primary replicas of partition p, in preference order. */
  readonly owners: readonly (readonly NodeId[])[];
}

export interface PreferenceList {
  /** The plan's owners of the partition that are still members: where the data belongs. */
  readonly primaries: readonly NodeId[];
  /** Every other member, in a per-partition order: where writes go when primaries are down. */
  readonly fallbacks: readonly NodeId[];
}

const utf8 = new TextEncoder();

/** MurmurHash3 (x86, 32-bit) of bytes. Fast, well mixed, and the same on every platform. */
export function murmur3(bytes: Uint8Array, seed = 0): number {
  let h = seed >>> 0;
  const blocks = bytes.length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = bytes.length & 3;
  if (tail > 0) {
    let k = bytes[blocks]!;
    if (tail > 1) k ^= bytes[blocks + 1]! << 8;
    if (tail > 2) k ^= bytes[blocks + 2]! << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of (bucket, key). The bucket is length-prefixed so ("ab","c") and ("a","bc") differ. */
export function hashKey(bucket: string, key: string): number {
  const b = utf8.encode(bucket);
  const k = utf8.encode(key);
  const bytes = new Uint8Array(4 + b.length + k.length);
  new DataView(bytes.buffer).setUint32(0, b.length);
  bytes.set(b, 4);
  bytes.set(k, 4 + b.length);
  return murmur3(bytes);
}

export function isValidPartitionCount(q: number): boolean {
  return Number.isInteger(q) && q >= 1 && q <= PARTITION_COUNT_MAX && (q & (q - 1)) === 0;
}

export function partitionOf(bucket: string, key: string, partitionCount: number): number {
  return hashKey(bucket, key) & (partitionCount - 1);
}

/**
 * Computes the plan for `members`. With no previous plan, owners are dealt round-robin over the
 * sorted members, which is perfectly balanced. Otherwise departed members' slots are refilled
 * and new members take slots from the most loaded nodes until all loads are within one.
 */
export function planRing(previous: RingPlan | undefined, members: readonly NodeId[], partitionCount: number, replicationFactor: number): RingPlan {
  if (!isValidPartitionCount(partitionCount)) throw new RangeError(`partition count ${partitionCount} is not a power of two in 1..${PARTITION_COUNT_MAX}`);
  if (!Number.isInteger(replicationFactor) || replicationFactor < 1) throw new RangeError(`replication factor ${replicationFactor} must be a positive integer`);
  const sorted = [...new Set(members)].sort();
  if (sorted.length !== members.length) throw new RangeError('members must be distinct');
  if (sorted.length === 0) throw new RangeError('a ring needs at least one member');
  const width = Math.min(replicationFactor, sorted.length);

  if (previous === undefined || previous.owners.length === 0) {
    // Round-robin dealing is close to balanced; the balancing pass below evens out the rest.
    const dealt = Array.from({ length: partitionCount }, (_, p) => Array.from({ length: width }, (_, j) => sorted[(p + j) % sorted.length]!));
    return { partitionCount, replicationFactor, owners: balance(dealt, sorted, new Set()) };
  }
  if (previous.partitionCount !== partitionCount || previous.replicationFactor !== replicationFactor) {
    throw new RangeError('partition count and replication factor are fixed when a cluster is created');
  }

  const memberSet = new Set(sorted);
  const owners = previous.owners.map((list) => list.filter((node) => memberSet.has(node)));
  const load = new Map<NodeId, number>(sorted.map((node) => [node, 0]));
  for (const list of owners) for (const node of list) load.set(node, load.get(node)! + 1);

  // Refill slots left by departed members (or opened by a larger member count), least loaded first.
  const fresh = new Set<string>();
  for (const [partition, list] of owners.entries()) {
    while (list.length < width) {
      const chosen = leastLoaded(sorted, load, (node) => !list.includes(node));
      if (chosen === undefined) break;
      list.push(chosen);
      load.set(chosen, load.get(chosen)! + 1);
      fresh.add(slotKey(partition, chosen));
    }
  }
  return { partitionCount, replicationFactor, owners: balance(owners, sorted, fresh) };
}

/**
 * Moves single slots from the most to the least loaded node until every load is within one.
 * A slot assigned earlier in this same planning round (`fresh`) is redirected first, because
 * changing its destination costs no extra data movement. Each move lowers the spread, so the
 * loop ends; its bound only guards against a logic error.
 */
function balance(owners: NodeId[][], members: readonly NodeId[], fresh: Set<string>): NodeId[][] {
  const load = new Map<NodeId, number>(members.map((node) => [node, 0]));
  for (const list of owners) for (const node of list) load.set(node, load.get(node)! + 1);
  const movesMax = owners.length * members.length;
  for (let move = 0; move < movesMax; move++) {
    const low = leastLoaded(members, load, () => true)!;
    const high = mostLoaded(members, load);
    const highLoad = load.get(high)!;
    if (highLoad - load.get(low)! <= 1) break;
    const sources = members.filter((node) => load.get(node) === highLoad);
    const path = freshPath(owners, members, fresh, sources, (node) => load.get(node)! <= highLoad - 2);
    const moves = path ?? stableMove(owners, high, low);
    if (moves === undefined) break;
    for (const step of moves) reassign(owners, fresh, step.partition, step.from, step.to);
    // Chains are listed target-first (see unwindPath): the last step leaves the source node.
    const source = moves[moves.length - 1]!.from;
    const target = moves[0]!.to;
    load.set(source, load.get(source)! - 1);
    load.set(target, load.get(target)! + 1);
  }
  return owners;
}

/** Moves one slot that was placed before this round: real data movement, so the last resort. */
function stableMove(owners: NodeId[][], high: NodeId, low: NodeId): SlotMove[] | undefined {
  const partition = owners.findIndex((list) => list.includes(high) && !list.includes(low));
  return partition < 0 ? undefined : [{ partition, from: high, to: low }];
}

interface SlotMove {
  readonly partition: number;
  readonly from: NodeId;
  readonly to: NodeId;
}

/**
 * Finds a chain high -> x -> ... -> low of fresh-slot moves (a breadth-first augmenting path):
 * each step hands one slot assigned in this round to a node that does not yet own that
 * partition. Applying the chain shifts one slot of load from high to low at no extra movement.
 */
function freshPath(owners: NodeId[][], members: readonly NodeId[], fresh: ReadonlySet<string>, sources: readonly NodeId[], isTarget: (node: NodeId) => boolean): SlotMove[] | undefined {
  if (fresh.size === 0) return undefined;
  const cameFrom = new Map<NodeId, SlotMove | null>(sources.map((node) => [node, null]));
  const queue: NodeId[] = [...sources];
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head]!;
    for (const [partition, list] of owners.entries()) {
      if (!fresh.has(slotKey(partition, node))) continue;
      for (const next of members) {
        if (cameFrom.has(next) || list.includes(next)) continue;
        cameFrom.set(next, { partition, from: node, to: next });
        if (isTarget(next)) return unwindPath(cameFrom, next);
        queue.push(next);
      }
    }
  }
  return undefined;
}

function unwindPath(cameFrom: ReadonlyMap<NodeId, SlotMove | null>, end: NodeId): SlotMove[] {
  const path: SlotMove[] = [];
  for (let step = cameFrom.get(end); step; step = cameFrom.get(step.from)) path.unshift(step);
  // Apply from the end backwards so each target slot is free of its new owner when it moves.
  return path.reverse();
}

function reassign(owners: NodeId[][], fresh: Set<string>, partition: number, from: NodeId, to: NodeId): void {
  const list = owners[partition]!;
  list[list.indexOf(from)] = to;
  if (fresh.delete(slotKey(partition, from))) fresh.add(slotKey(partition, to));
}

function slotKey(partition: number, node: NodeId): string {
  return `${partition}/${node}`;
}

/** The nodes that own partition p, then the remaining members in a partition-specific order. */
export function preferenceList(plan: RingPlan, partition: number, members: readonly NodeId[]): PreferenceList {
  const owners = plan.owners[partition];
  if (owners === undefined) throw new RangeError(`partition ${partition} is outside the plan`);
  const memberSet = new Set(members);
  const primaries = owners.filter((node) => memberSet.has(node));
  const others = [...memberSet].filter((node) => !owners.includes(node));
  // Rendezvous order spreads the fallback load of one failed node over all the others.
  const ranked = others.map((node) => ({ node, rank: murmur3(utf8.encode(`${partition}/${node}`)) }));
  ranked.sort((a, b) => a.rank - b.rank || (a.node < b.node ? -1 : 1));
  return { primaries, fallbacks: ranked.map((r) => r.node) };
}

/** How many slots each node holds in the plan. */
export function ownershipCounts(plan: RingPlan): Map<NodeId, number> {
  const counts = new Map<NodeId, number>();
  for (const list of plan.owners) for (const node of list) counts.set(node, (counts.get(node) ?? 0) + 1);
  return counts;
}

/** Partitions each node owns in `next` but did not own in `previous`: the transfers a change needs. */
export function planTransfers(previous: RingPlan, next: RingPlan): { partition: number; to: NodeId; from: readonly NodeId[] }[] {
  const transfers: { partition: number; to: NodeId; from: readonly NodeId[] }[] = [];
  next.owners.forEach((list, partition) => {
    const before = previous.owners[partition] ?? [];
    for (const node of list) if (!before.includes(node)) transfers.push({ partition, to: node, from: before });
  });
  return transfers;
}

function leastLoaded(nodes: readonly NodeId[], load: ReadonlyMap<NodeId, number>, eligible: (node: NodeId) => boolean): NodeId | undefined {
  let best: NodeId | undefined;
  for (const node of nodes) {
    if (eligible(node) && (best === undefined || load.get(node)! < load.get(best)!)) best = node;
  }
  return best;
}

function mostLoaded(nodes: readonly NodeId[], load: ReadonlyMap<NodeId, number>): NodeId {
  let best = nodes[0]!;
  for (const node of nodes) if (load.get(node)! > load.get(best)!) best = node;
  return best;
}
