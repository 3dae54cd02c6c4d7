/**
 * The KeyValueService of a clustered node: resolves each request's quorum values (request,
 * then bucket properties, then node defaults), checks them against N, and hands the request to
 * the coordinator. Coordinator and storage failures become catalogue errors here.
 */
import { resolveQuorum, validateRead, validateWrite, type QuorumSpec, type ReadRequirement, type WriteRequirement } from '../core/quorum';
import { effectiveReplicationFactor, type BucketProps } from '../core/ring';
import type { ConflictMode, NewValue, VersionVector, VersionedObject } from '../core/version';
import { CoordinationError, type Coordinator } from '../cluster/coordinator';
import type { Membership, MembershipError } from '../cluster/membership';
import { PeerCallError } from '../transport/peerClient';
import { DynamoError } from './errors';
import { translateStorageErrors, type GetOptions, type KeyValueService, type WriteOptions } from './keyValueService';


export interface QuorumDefaults {
  readonly r: QuorumSpec;
  readonly w: QuorumSpec;
  readonly dw: QuorumSpec;
}

const EMPTY_VALUE = new Uint8Array(0);

export class ClusterKeyValueService implements KeyValueService {
  constructor(
    private readonly coordinator: Coordinator,
    private readonly membership: Membership,
    private readonly defaults: QuorumDefaults,
    private readonly syncWrites: boolean,
    private readonly nowMs: () => number,
  ) {}

  async get(bucket: string, key: string, options: GetOptions): Promise<VersionedObject | undefined> {
    const props = this.props(bucket);
    const n = effectiveReplicationFactor(this.membership.ring());
    const read: ReadRequirement = { r: resolveQuorum(options.r ?? props.r ?? this.defaults.r, n), pr: resolveQuorum(options.pr ?? 0, n) };
    const problem = validateRead(read, n);
    if (problem !== undefined) throw new DynamoError('PARAMETER_INVALID', problem);
    return translateClusterErrors(() => this.coordinator.get({ bucket, key, read, consistent: options.consistent === true, conflictMode: this.conflictMode(props) }));
  }

  put(bucket: string, key: string, value: Uint8Array, contentType: string, context: VersionVector, options: WriteOptions): Promise<VersionedObject> {
    return this.write(bucket, key, { value, contentType, lastModifiedMs: this.nowMs(), deleted: false }, context, options);
  }

  delete(bucket: string, key: string, context: VersionVector, options: WriteOptions): Promise<VersionedObject> {
    return this.write(bucket, key, { value: EMPTY_VALUE, contentType: 'application/octet-stream', lastModifiedMs: this.nowMs(), deleted: true }, context, options);
  }

  private async write(bucket: string, key: string, value: NewValue, context: VersionVector, options: WriteOptions): Promise<VersionedObject> {
    const props = this.props(bucket);
    const n = effectiveReplicationFactor(this.membership.ring());
    const durableDefault = (options.sync ?? this.syncWrites) ? 1 : (props.dw ?? this.defaults.dw);
    const write: WriteRequirement = {
      w: resolveQuorum(options.w ?? props.w ?? this.defaults.w, n),
      dw: resolveQuorum(options.dw ?? durableDefault, n),
      pw: resolveQuorum(options.pw ?? 0, n),
    };
    const problem = validateWrite(write, n);
    if (problem !== undefined) throw new DynamoError('PARAMETER_INVALID', problem);
    return translateClusterErrors(() => this.coordinator.put({ bucket, key, value, context, write, conflictMode: this.conflictMode(props) }));
  }

  private props(bucket: string): BucketProps {
    return this.membership.ring().buckets[bucket] ?? {};
  }

  private conflictMode(props: BucketProps): ConflictMode {
    return props.conflictMode ?? 'siblings';
  }
}

/** Storage errors as in single-node mode, plus quorum and peer failures. */
export async function translateClusterErrors<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await translateStorageErrors(operation);
  } catch (error) {
    if (error instanceof CoordinationError) throw new DynamoError('QUORUM_UNAVAILABLE', error.message, { 'retry-after': '1' });
    if (error instanceof PeerCallError) {
      if (error.code === 'OVERLOADED' || error.code === 'PEER_BUSY') throw new DynamoError('OVERLOADED', error.message, { 'retry-after': '1' });
      throw new DynamoError('QUORUM_UNAVAILABLE', error.message, { 'retry-after': '1' });
    }
    if ((error as MembershipError).name === 'MembershipError') {
      const e = error as MembershipError;
      throw new DynamoError(e.code, e.message);
    }
    throw error;
  }
}
