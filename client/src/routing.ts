/**
 * Partition-aware routing (Dynamo's "partition-aware client library", DeCandia et al. section 4.5):
 * the client hashes a key exactly as the nodes do and sends the request to a primary replica of
 * it, so the node that receives it coordinates at once instead of forwarding the write to a
 * replica (one HTTP exchange less) or reading every replica remotely.
 *
 * The ring comes from GET /v1/ring. It is refreshed when a node's answer names a newer ring
 * version (X-Dynamo-Ring-Version), and otherwise at most every `refreshIntervalMs`; there is
 * never more than one refresh in flight, and two refreshes start at least `refreshGapMsMin`
 * apart, so nodes that disagree on the version during gossip cannot make the client poll in a
 * loop. A request never waits for a refresh: until a ring is known, and for keys whose primaries
 * all look down, the client's ordinary failover order applies.
 *
 * Liveness is the answering node's judgement (`up` in the ring) plus the client's own: an
 * endpoint that failed to answer is skipped for `suspectMs`.
 */
import { isValidPartitionCount, partitionOf } from '../../node/src/core/partition';
import type { RingInfo } from './admin';
import { normaliseEndpoint } from './transport';

export type RoutingMode = 'partition-aware' | 'any';

export const RING_VERSION_HEADER = 'x-dynamo-ring-version';

/** The part of a ring that routing needs, checked and normalised. */
export interface RoutingRing {
  readonly version: number;
  readonly partitionCount: number;
  /** owners[p]: the client URLs of partition p's primary replicas that are members, in plan order. */
  readonly owners: readonly (readonly string[])[];
  /** Client URLs of members the answering node judged down when it answered. */
  readonly down: ReadonlySet<string>;
}

/** Member states that hold their plan slots (a joining member owns nothing until its change commits). */
const OWNING_STATES: ReadonlySet<string> = new Set(['normal', 'leaving', 'joining']);

/**
 * The routing view of a GET /v1/ring answer, or undefined when the answer lacks what routing
 * needs (an older node, a partial answer): routing then stays off until the next refresh.
 */
export function routingRingOf(info: RingInfo): RoutingRing | undefined {
  const { version, partitionCount } = info;
  if (version === undefined || partitionCount === undefined || !isValidPartitionCount(partitionCount)) return undefined;
  const partitions = info.raw.partitions;
  if (!Array.isArray(partitions) || partitions.length !== partitionCount) return undefined;
  const urlOf = new Map<string, string>();
  const down = new Set<string>();
  for (const member of info.members) {
    if (member.clientUrl === undefined || !OWNING_STATES.has(member.state)) continue;
    let url: string;
    try {
      url = normaliseEndpoint(member.clientUrl);
    } catch {
      continue;
    }
    urlOf.set(member.id, url);
    if (member.up === false) down.add(url);
  }
  const owners: string[][] = Array.from({ length: partitionCount }, () => []);
  for (const entry of partitions as unknown[]) {
    if (typeof entry !== 'object' || entry === null) return undefined;
    const { partition, owners: ids } = entry as { partition?: unknown; owners?: unknown };
    if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0 || partition >= partitionCount || !Array.isArray(ids)) return undefined;
    owners[partition] = ids.flatMap((id: unknown) => {
      const url = typeof id === 'string' ? urlOf.get(id) : undefined;
      return url === undefined ? [] : [url];
    });
  }
  return { version, partitionCount, owners, down };
}

/** The client URLs of the primary replicas of (bucket, key), in plan order; [] when none is known. */
export function primaryEndpoints(ring: RoutingRing, bucket: string, key: string): readonly string[] {
  return ring.owners[partitionOf(bucket, key, ring.partitionCount)] ?? [];
}

export interface RingRouterOptions {
  readonly mode: RoutingMode;
  /** Fetches the ring, from `endpoint` when given (the node that announced a newer version). */
  readonly fetchRing: (endpoint: string | undefined) => Promise<RoutingRing | undefined>;
  readonly nowMs: () => number;
  /** A ring older than this is refreshed at the next request. */
  readonly refreshIntervalMs: number;
  /** Two refreshes start at least this far apart, whatever triggers them. */
  readonly refreshGapMsMin: number;
  /** How long an endpoint that failed to answer is passed over. */
  readonly suspectMs: number;
}

/** The suspect list is bounded; past this many entries the oldest suspicions are forgotten. */
const SUSPECTS_MAX = 1024;

export class RingRouter {
  private ring: RoutingRing | undefined;
  private refreshing: Promise<void> | undefined;
  /** When the last refresh started; -Infinity before the first. */
  private refreshStartedMs = Number.NEGATIVE_INFINITY;
  /** A newer version a node announced while a refresh could not start yet. */
  private announcedVersion = 0;
  private announcedBy: string | undefined;
  private lastRefreshFailed = false;
  private readonly suspectUntilMs = new Map<string, number>();
  private rotation = 0;

  constructor(private readonly options: RingRouterOptions) {}

  get mode(): RoutingMode {
    return this.options.mode;
  }

  /** The ring version routing uses, or undefined before one is known. */
  get ringVersion(): number | undefined {
    return this.ring?.version;
  }

  /**
   * The endpoints to try first for (bucket, key): its primaries that look up, starting at a
   * rotating one so the primaries share the load. [] means "use the failover order".
   */
  endpointsFor(bucket: string, key: string): readonly string[] {
    if (this.options.mode === 'any') return [];
    this.refreshIfDue();
    const ring = this.ring;
    if (ring === undefined) return [];
    const primaries = primaryEndpoints(ring, bucket, key);
    const nowMs = this.options.nowMs();
    const usable = primaries.filter((url) => !ring.down.has(url) && !this.isSuspect(url, nowMs));
    if (usable.length < 2) return usable;
    const start = this.rotation++ % usable.length;
    if (this.rotation >= Number.MAX_SAFE_INTEGER) this.rotation = 0;
    return [...usable.slice(start), ...usable.slice(0, start)];
  }

  /** Reads a node's X-Dynamo-Ring-Version: a newer version than ours starts a refresh from that node. */
  observe(endpoint: string, ringVersionHeader: string | undefined): void {
    if (this.options.mode === 'any' || ringVersionHeader === undefined) return;
    const announced = Number(ringVersionHeader);
    if (!Number.isSafeInteger(announced) || announced <= (this.ring?.version ?? 0)) return;
    if (announced > this.announcedVersion) {
      this.announcedVersion = announced;
      this.announcedBy = endpoint;
    }
    this.refreshIfDue();
  }

  /** An endpoint that did not answer (connection refused, reset, timeout) is passed over for a while. */
  endpointFailed(endpoint: string): void {
    if (this.options.mode === 'any') return;
    if (this.suspectUntilMs.size >= SUSPECTS_MAX) {
      const oldest = this.suspectUntilMs.keys().next();
      if (oldest.done !== true) this.suspectUntilMs.delete(oldest.value);
    }
    this.suspectUntilMs.delete(endpoint);
    this.suspectUntilMs.set(endpoint, this.options.nowMs() + this.options.suspectMs);
  }

  /** Fetches the ring now unless a refresh is already in flight; resolves when that refresh ends. */
  refresh(endpoint?: string): Promise<void> {
    if (this.refreshing !== undefined) return this.refreshing;
    this.refreshStartedMs = this.options.nowMs();
    const from = endpoint ?? this.announcedBy;
    this.refreshing = this.options
      .fetchRing(from)
      .then(
        (ring) => {
          this.lastRefreshFailed = ring === undefined;
          // Never step back: a node that has not heard of a change yet may answer an older ring.
          if (ring !== undefined && (this.ring === undefined || ring.version >= this.ring.version)) this.ring = ring;
        },
        () => {
          this.lastRefreshFailed = true;
        },
      )
      .finally(() => {
        this.refreshing = undefined;
        // The announcing node is asked once; after that any node will do (it may have gone down).
        this.announcedBy = undefined;
      });
    return this.refreshing;
  }

  private refreshIfDue(): void {
    if (this.refreshing !== undefined) return;
    const sinceMs = this.options.nowMs() - this.refreshStartedMs;
    // After a failed fetch (a node without the ring route, a wrong token) only the interval applies,
    // so a client that cannot route costs one extra request per interval, not one per request.
    if (sinceMs < (this.lastRefreshFailed ? this.options.refreshIntervalMs : this.options.refreshGapMsMin)) return;
    const behind = this.announcedVersion > (this.ring?.version ?? 0);
    if (behind || this.ring === undefined || sinceMs >= this.options.refreshIntervalMs) void this.refresh();
  }

  private isSuspect(url: string, nowMs: number): boolean {
    const untilMs = this.suspectUntilMs.get(url);
    if (untilMs === undefined) return false;
    if (untilMs > nowMs) return true;
    this.suspectUntilMs.delete(url);
    return false;
  }
}
