/**
 * The KeyValueService of a node: resolves each request's quorum values (request, then bucket
 * properties, then node defaults), checks them against N, and hands the request to the
 * coordinator. A single node is a cluster of one member. Coordinator, membership, peer and
 * storage failures become catalogue errors here.
 *
 * Quorum values, and why they are checked the way they are:
 * - N is the cluster's replication factor. A ring with fewer members than N keeps one copy per
 *   member, so `n` (effective N) = min(N, active members); one/quorum/all resolve against n.
 * - A value the client sent that no ring of this cluster could ever meet (r > N, dw > w, ...) is
 *   the client's mistake: 400 PARAMETER_INVALID naming the parameter.
 * - A value the client sent that N allows but the ring cannot meet today (r=3 while only one
 *   member exists) is the same situation as replicas being down: 503 QUORUM_UNAVAILABLE, found
 *   before anything is written.
 * - A value the client did not send (bucket property or node default) is clamped to n, so a
 *   bucket with w=3 keeps accepting writes on a smaller ring instead of failing every request
 *   for a parameter the client never chose; a defaulted dw is clamped to w likewise.
 */
import { resolveQuorum, validateRead, validateWrite, type QuorumSpec, type ReadRequirement, type WriteRequirement } from '../core/quorum';
import { effectiveReplicationFactor, type BucketProps, type RingState } from '../core/ring';
import type { ConflictMode, NewValue, VersionVector, VersionedObject } from '../core/version';
import { CoordinationError, type Coordinator } from '../cluster/coordinator';
import { MembershipError, type Membership } from '../cluster/membership';
import { PeerCallError } from '../transport/peerClient';
import { DynamoError, type ErrorCode } from './errors';
import { translateStorageError, type GetOptions, type KeyValueService, type WriteOptions } from './keyValueService';

export interface QuorumDefaults {
  readonly r: QuorumSpec;
  readonly w: QuorumSpec;
  readonly dw: QuorumSpec;
}

const EMPTY_VALUE = new Uint8Array(0);
/** Seconds a client should wait after QUORUM_UNAVAILABLE: about one gossip and ping round. */
export const QUORUM_RETRY_AFTER_SECONDS = 1;

/** The replica counts a request's quorum values are checked against. */
interface ReplicaCounts {
  /** The cluster's replication factor N. */
  readonly configured: number;
  /** min(N, active members): the copies the ring keeps today. */
  readonly effective: number;
}

interface QuorumValue {
  readonly value: number;
  readonly explicit: boolean;
}

export class ClusterKeyValueService implements KeyValueService {
  constructor(
    private readonly coordinator: Coordinator,
    private readonly membership: Membership,
    private readonly defaults: QuorumDefaults,
    private readonly syncWrites: boolean,
    private readonly nowMs: () => number,
    /** Counts requests refused for want of replicas (the dynamokv_quorum_failures_total metric). */
    private readonly quorumFailed: (operation: 'get' | 'put' | 'delete') => void = () => undefined,
  ) {}

  /**
   * Runs a coordinator call, translating its errors and counting the quorum failures among them.
   * One async frame: this wraps every client request, and each frame is a promise and a
   * microtask turn more per request.
   */
  private async coordinated<T>(operation: 'get' | 'put' | 'delete', call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      const translated = translateClusterError(translateStorageError(error));
      if (translated instanceof DynamoError && translated.code === 'QUORUM_UNAVAILABLE') this.quorumFailed(operation);
      throw translated;
    }
  }

  async get(bucket: string, key: string, options: GetOptions): Promise<VersionedObject | undefined> {
    this.assertMember();
    const ring = this.membership.ring();
    const props = bucketProps(ring, bucket);
    const counts = replicaCounts(ring);
    const r = resolveValue('r', options.r, props.r ?? this.defaults.r, counts, 1);
    const pr = resolveValue('pr', options.pr, 0, counts, 0);
    // A consistent read sets its own requirement (a majority of primaries), so r and pr only
    // need to be well-formed; checking them against today's ring would refuse a read that
    // ignores them anyway.
    if (options.consistent !== true) requireReachable([['r', r], ['pr', pr]], counts);
    const read: ReadRequirement = { r: Math.min(r.value, counts.effective), pr: Math.min(pr.value, counts.effective) };
    assertValid(validateRead(read, counts.effective));
    return this.coordinated('get', () => this.coordinator.get({ bucket, key, read, consistent: options.consistent === true, conflictMode: conflictModeOf(props) }));
  }

  /** A node that left holds no data and is no longer told about writes: it must not serve keys. */
  private assertMember(): void {
    if (this.membership.member(this.membership.selfId)?.state === 'left') throw new DynamoError('NODE_LEFT', undefined, { 'retry-after': '1' });
  }

  put(bucket: string, key: string, value: Uint8Array, contentType: string, context: VersionVector, options: WriteOptions): Promise<VersionedObject> {
    return this.write(bucket, key, { value, contentType, lastModifiedMs: this.nowMs(), deleted: false }, context, options);
  }

  delete(bucket: string, key: string, context: VersionVector, options: WriteOptions): Promise<VersionedObject> {
    return this.write(bucket, key, { value: EMPTY_VALUE, contentType: 'application/octet-stream', lastModifiedMs: this.nowMs(), deleted: true }, context, options);
  }

  private async write(bucket: string, key: string, value: NewValue, context: VersionVector, options: WriteOptions): Promise<VersionedObject> {
    this.assertMember();
    const ring = this.membership.ring();
    const props = bucketProps(ring, bucket);
    const counts = replicaCounts(ring);
    const w = resolveValue('w', options.w, props.w ?? this.defaults.w, counts, 1);
    const durableDefault = (options.sync ?? this.syncWrites) ? 1 : (props.dw ?? this.defaults.dw);
    const dwResolved = resolveValue('dw', options.dw, durableDefault, counts, 0);
    const pw = resolveValue('pw', options.pw, 0, counts, 0);
    if (dwResolved.explicit && dwResolved.value > w.value) throw new DynamoError('PARAMETER_INVALID', `dw=${dwResolved.value} must not exceed w=${w.value}.`);
    const dw = dwResolved.explicit ? dwResolved : { value: Math.min(dwResolved.value, w.value), explicit: false };
    requireReachable([['w', w], ['dw', dw], ['pw', pw]], counts);
    const write: WriteRequirement = { w: w.value, dw: dw.value, pw: pw.value };
    assertValid(validateWrite(write, counts.effective));
    return this.coordinated(value.deleted ? 'delete' : 'put', () => this.coordinator.put({ bucket, key, value, context, write, conflictMode: conflictModeOf(props) }));
  }
}

function bucketProps(ring: RingState, bucket: string): BucketProps {
  return ring.buckets[bucket] ?? {};
}

function conflictModeOf(props: BucketProps): ConflictMode {
  return props.conflictMode ?? 'siblings';
}

function replicaCounts(ring: RingState): ReplicaCounts {
  return { configured: ring.replicationFactor, effective: effectiveReplicationFactor(ring) };
}

/**
 * One quorum value: the request's (checked against N; 400 naming it when impossible) or the
 * fallback (bucket property or node default, clamped to the copies the ring keeps today).
 */
function resolveValue(name: string, requested: QuorumSpec | undefined, fallback: QuorumSpec, counts: ReplicaCounts, min: number): QuorumValue {
  if (requested === undefined) return { value: Math.max(min, Math.min(resolveQuorum(fallback, counts.effective), counts.effective)), explicit: false };
  const value = resolveQuorum(requested, counts.effective);
  if (value < min || value > counts.configured) {
    throw new DynamoError('PARAMETER_INVALID', `${name}=${value} is impossible: it must be between ${min} and N=${counts.configured}.`);
  }
  return { value, explicit: true };
}

/** Explicit values N allows but today's ring cannot meet: 503 before anything is written. */
function requireReachable(values: readonly (readonly [string, QuorumValue])[], counts: ReplicaCounts): void {
  for (const [name, { value }] of values) {
    if (value > counts.effective) {
      throw quorumUnavailable(`${name}=${value} needs ${value} replicas, but the ring has ${counts.effective} active member(s) (N=${counts.configured}).`);
    }
  }
}

/** The checks above make the core validators pass; a failure here is a bug, not bad input. */
function assertValid(problem: string | undefined): void {
  if (problem !== undefined) throw new DynamoError('INTERNAL', `quorum resolution produced an invalid requirement: ${problem}`);
}

export function quorumUnavailable(message: string): DynamoError {
  return new DynamoError('QUORUM_UNAVAILABLE', message, { 'retry-after': String(QUORUM_RETRY_AFTER_SECONDS) });
}

/**
 * Codes a peer may answer that mean the same to our client as to the peer: a forwarded join,
 * leave or write that the claimant or a replica refused keeps its code. Other peer codes
 * (unreachable, busy, peer authentication) describe the link between nodes and become 503.
 */
const PEER_CODES_KEPT: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['MEMBERSHIP_CONFLICT', 'PARAMETER_INVALID', 'STORAGE_CORRUPT']);

/** Storage errors as in translateStorageErrors, plus quorum, membership and peer failures. */
export async function translateClusterErrors<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw translateClusterError(translateStorageError(error));
  }
}

function translateClusterError(error: unknown): unknown {
  if (error instanceof CoordinationError) return quorumUnavailable(error.message);
  if (error instanceof MembershipError) return error.code === 'QUORUM_UNAVAILABLE' ? quorumUnavailable(error.message) : new DynamoError(error.code, error.message);
  if (error instanceof PeerCallError) {
    if (error.code === 'OVERLOADED' || error.code === 'PEER_BUSY') return new DynamoError('OVERLOADED', error.message);
    if (error.code === 'STORAGE_CORRUPT') return new DynamoError('STORAGE_CORRUPT');
    if ((PEER_CODES_KEPT as ReadonlySet<string>).has(error.code)) return new DynamoError(error.code as ErrorCode, error.message);
    return quorumUnavailable(error.message);
  }
  return error;
}
