/**
 * The peer protocol: one msgpack request and one msgpack response per HTTP POST to
 * /peer/v1/<method> on the peer port. Every decoder checks shapes and types field by field,
 * so nothing untyped leaks past this module, and a bad message is rejected with a reason.
 */
import { Packr } from 'msgpackr';
import type { BucketProps, Member, MemberState, RingDigest, RingState } from '../core/ring';
import { HASH_BYTES, TREE_DIMENSION_MAX, type KeyDigest } from '../core/tictac';
import type { AbortedChange } from '../core/transition';
import { decodeHandoffBatch, decodeHandoffStatus, decodePending, type HandoffBatchRequest, type HandoffStatusResponse } from './handoffMessages';
import { PeerDecodeError, bool, bytes, int, optionalStr, record, str, type Fields } from './messageFields';

export { PeerDecodeError };
export { HANDOFF_ENTRIES_PER_BATCH_MAX, type HandoffBatchRequest, type HandoffStatusResponse } from './handoffMessages';

export const PEER_PROTOCOL_VERSION = 1;
export const PEER_CONTENT_TYPE = 'application/msgpack';

export interface ReplicateRequest {
  readonly partition: number;
  readonly bucket: string;
  readonly key: string;
  /** The object encoded by storage/objectCodec. */
  readonly object: Uint8Array;
  readonly sync: boolean;
  /** Set when the receiver stands in for this unreachable primary (sloppy quorum). */
  readonly hintFor?: string;
}

export interface ReadRequest {
  readonly partition: number;
  readonly bucket: string;
  readonly key: string;
}

export interface CoordinateRequest {
  readonly bucket: string;
  readonly key: string;
  readonly value: Uint8Array;
  readonly contentType: string;
  readonly deleted: boolean;
  readonly lastModifiedMs: number;
  /** Context bytes as produced by core/context encodeContext (already verified by the receiver of the client call). */
  readonly context: Uint8Array;
  readonly w: number;
  readonly dw: number;
  readonly pw: number;
  /** How many forwards this request has taken; a bound against forwarding loops. */
  readonly hops: number;
}

/**
 * Anti-entropy: the tree of one partition. The caller names the tree shape it uses (both sides
 * must agree) and the branches whose leaf hashes it wants; [] asks for root and branches only.
 */
export interface AeTreeRequest {
  readonly partition: number;
  readonly branchCount: number;
  readonly leavesPerBranch: number;
  readonly branches: readonly number[];
}

export interface AeTreeResponse {
  /** HASH_BYTES bytes. */
  readonly root: Uint8Array;
  /** branchCount hashes of HASH_BYTES bytes. */
  readonly branches: Uint8Array;
  /** leavesPerBranch hashes per requested branch, in request order. */
  readonly leaves: Uint8Array;
}

/** Anti-entropy: the keys (with version digests) this node holds in some segments of a partition. */
export interface AeKeysRequest {
  readonly partition: number;
  readonly branchCount: number;
  readonly leavesPerBranch: number;
  readonly segments: readonly number[];
  readonly keysMax: number;
}

export interface AeKeysResponse {
  readonly keys: readonly KeyDigest[];
  /** More keys were in those segments than keysMax. */
  readonly truncated: boolean;
}

/** Bounds of anti-entropy messages: segments named in one call and keys listed in one answer. */
export const AE_SEGMENTS_PER_CALL_MAX = 4096;
export const AE_KEYS_PER_CALL_MAX = 10_000;

export type GossipRequest = { readonly digest: RingDigest; readonly ring?: undefined } | { readonly ring: RingState; readonly digest?: undefined };

export interface GossipResponse {
  readonly digest: RingDigest;
  /** Present when the answering node's ring is newer than the one the request described. */
  readonly ring?: RingState;
}

export interface PeerMethods {
  ping: { request: { from: string }; response: { id: string; ringVersion: number } };
  replicate: { request: ReplicateRequest; response: { durable: boolean } };
  read: { request: ReadRequest; response: { object: Uint8Array | null } };
  coordinate: { request: CoordinateRequest; response: { object: Uint8Array } };
  /**
   * Gossip sends a digest of the ring and gets the partner's ring back only when the partner's is
   * newer; a sender that learns its ring is the newer one pushes it whole (`ring` in the request).
   */
  gossip: { request: GossipRequest; response: GossipResponse };
  join: { request: { member: Omit<Member, 'state'>; partitionCount?: number; replicationFactor?: number }; response: { ring: RingState } };
  leave: { request: { id: string }; response: { ring: RingState } };
  bucketProps: { request: { bucket: string; props: BucketProps }; response: { ring: RingState } };
  aeTree: { request: AeTreeRequest; response: AeTreeResponse };
  aeKeys: { request: AeKeysRequest; response: AeKeysResponse };
  handoffBatch: { request: HandoffBatchRequest; response: HandoffStatusResponse };
  handoffStatus: { request: { transferId: string }; response: HandoffStatusResponse };
  handoffDone: { request: { transferId: string }; response: { ring: RingState } };
  /** An admin abort of the pending membership change, applied by the claimant. */
  abort: { request: Record<string, never>; response: { ring: RingState; aborted: AbortedChange | null } };
}

export type PeerMethod = keyof PeerMethods;
export type PeerRequest<M extends PeerMethod> = PeerMethods[M]['request'];
export type PeerResponse<M extends PeerMethod> = PeerMethods[M]['response'];

function decodeDigest(value: unknown): RingDigest {
  const f = record(value, 'ring digest');
  return { clusterId: str(f, 'clusterId', 64), version: int(f, 'version', 0, Number.MAX_SAFE_INTEGER), fingerprint: int(f, 'fingerprint', 0, 0xffff_ffff) };
}

export const PEER_METHODS: readonly PeerMethod[] = ['ping', 'replicate', 'read', 'coordinate', 'gossip', 'join', 'leave', 'bucketProps', 'aeTree', 'aeKeys', 'handoffBatch', 'handoffStatus', 'handoffDone', 'abort'];

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function packMessage(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpackMessage(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new PeerDecodeError(`not msgpack (${(error as Error).message})`);
  }
}

const MEMBER_STATES: readonly MemberState[] = ['joining', 'normal', 'leaving', 'left'];

function decodeMember(value: unknown, withState: boolean): Member {
  const f = record(value, 'member');
  const state = withState ? f.state : 'normal';
  if (!MEMBER_STATES.includes(state as MemberState)) throw new PeerDecodeError('member state is unknown');
  return { id: str(f, 'id', 255), clientUrl: str(f, 'clientUrl', 1024), peerUrl: str(f, 'peerUrl', 1024), state: state as MemberState };
}

/** Bounds for a ring received from the network: a few thousand members, Q up to 65536. */
const RING_MEMBERS_MAX = 4096;

export function decodeRing(value: unknown): RingState {
  const f = record(value, 'ring');
  const members = f.members;
  if (!Array.isArray(members) || members.length === 0 || members.length > RING_MEMBERS_MAX) throw new PeerDecodeError('ring members must be a non-empty list');
  const plan = record(f.plan, 'plan');
  const partitionCount = int(f, 'partitionCount', 1, 65536);
  const replicationFactor = int(f, 'replicationFactor', 1, 64);
  const owners = plan.owners;
  if (!Array.isArray(owners) || owners.length !== partitionCount) throw new PeerDecodeError('plan owners must list every partition');
  const decodedMembers = members.map((m) => decodeMember(m, true));
  const ids = new Set(decodedMembers.map((m) => m.id));
  const decodedOwners = owners.map((list) => {
    if (!Array.isArray(list) || list.length > replicationFactor || list.some((id) => typeof id !== 'string' || !ids.has(id))) {
      throw new PeerDecodeError('plan owners must be lists of known member ids');
    }
    return list as string[];
  });
  return {
    clusterId: str(f, 'clusterId', 255),
    version: int(f, 'version', 1),
    partitionCount,
    replicationFactor,
    members: decodedMembers,
    plan: { partitionCount: int(plan, 'partitionCount', 1, 65536), replicationFactor: int(plan, 'replicationFactor', 1, 64), owners: decodedOwners },
    buckets: decodeBuckets(f.buckets),
    ...(f.pending === undefined || f.pending === null ? {} : { pending: decodePending(f.pending, partitionCount, replicationFactor, ids) }),
  };
}

const BUCKETS_MAX = 10_000;

function decodeBuckets(value: unknown): Record<string, BucketProps> {
  if (value === undefined || value === null) return {};
  const f = record(value, 'buckets');
  const names = Object.keys(f);
  if (names.length > BUCKETS_MAX) throw new PeerDecodeError('too many bucket entries');
  return Object.fromEntries(names.map((name) => [name, decodeBucketProps(f[name])]));
}

export function decodeBucketProps(value: unknown): BucketProps {
  const f = record(value, 'bucket props');
  const props: { r?: number; w?: number; dw?: number; conflictMode?: 'siblings' | 'lww' } = {};
  for (const name of ['r', 'w', 'dw'] as const) if (f[name] !== undefined && f[name] !== null) props[name] = int(f, name, 0, 64);
  if (f.conflictMode !== undefined && f.conflictMode !== null) {
    if (f.conflictMode !== 'siblings' && f.conflictMode !== 'lww') throw new PeerDecodeError('conflictMode must be siblings or lww');
    props.conflictMode = f.conflictMode;
  }
  return props;
}

/** Decoders for requests, by method. Responses reuse them where the shape is the same. */
export const decodeRequest: { [M in PeerMethod]: (value: unknown) => PeerRequest<M> } = {
  ping: (v) => ({ from: str(record(v, 'ping'), 'from', 255) }),
  replicate: (v) => {
    const f = record(v, 'replicate');
    const hintFor = optionalStr(f, 'hintFor');
    return { partition: int(f, 'partition', 0, 65535), bucket: str(f, 'bucket'), key: str(f, 'key'), object: bytes(f, 'object'), sync: bool(f, 'sync'), ...(hintFor === undefined ? {} : { hintFor }) };
  },
  read: (v) => {
    const f = record(v, 'read');
    return { partition: int(f, 'partition', 0, 65535), bucket: str(f, 'bucket'), key: str(f, 'key') };
  },
  coordinate: (v) => {
    const f = record(v, 'coordinate');
    return {
      bucket: str(f, 'bucket'),
      key: str(f, 'key'),
      value: bytes(f, 'value'),
      contentType: str(f, 'contentType', 1024),
      deleted: bool(f, 'deleted'),
      lastModifiedMs: int(f, 'lastModifiedMs'),
      context: bytes(f, 'context'),
      w: int(f, 'w', 1, 64),
      dw: int(f, 'dw', 0, 64),
      pw: int(f, 'pw', 0, 64),
      hops: int(f, 'hops', 0, 8),
    };
  },
  gossip: (v) => {
    const f = record(v, 'gossip');
    return f.ring === undefined || f.ring === null ? { digest: decodeDigest(f.digest) } : { ring: decodeRing(f.ring) };
  },
  join: (v) => {
    const f = record(v, 'join');
    const member = decodeMember(f.member, false);
    if (f.partitionCount === undefined || f.partitionCount === null) return { member };
    return { member, partitionCount: int(f, 'partitionCount', 1, 65536), replicationFactor: int(f, 'replicationFactor', 1, 64) };
  },
  leave: (v) => ({ id: str(record(v, 'leave'), 'id', 255) }),
  bucketProps: (v) => {
    const f = record(v, 'bucketProps');
    return { bucket: str(f, 'bucket'), props: decodeBucketProps(f.props) };
  },
  aeTree: (v) => {
    const f = record(v, 'aeTree');
    const branchCount = int(f, 'branchCount', 1, TREE_DIMENSION_MAX);
    return { partition: int(f, 'partition', 0, 65535), branchCount, leavesPerBranch: int(f, 'leavesPerBranch', 1, TREE_DIMENSION_MAX), branches: intList(f, 'branches', branchCount - 1, TREE_DIMENSION_MAX) };
  },
  aeKeys: (v) => {
    const f = record(v, 'aeKeys');
    const branchCount = int(f, 'branchCount', 1, TREE_DIMENSION_MAX);
    const leavesPerBranch = int(f, 'leavesPerBranch', 1, TREE_DIMENSION_MAX);
    return {
      partition: int(f, 'partition', 0, 65535),
      branchCount,
      leavesPerBranch,
      segments: intList(f, 'segments', branchCount * leavesPerBranch - 1, AE_SEGMENTS_PER_CALL_MAX),
      keysMax: int(f, 'keysMax', 1, AE_KEYS_PER_CALL_MAX),
    };
  },
  handoffBatch: decodeHandoffBatch,
  handoffStatus: (v) => ({ transferId: str(record(v, 'handoffStatus'), 'transferId', 600) }),
  handoffDone: (v) => ({ transferId: str(record(v, 'handoffDone'), 'transferId', 600) }),
  abort: (v) => {
    record(v, 'abort');
    return {};
  },
};

/** A list of at most `lengthMax` integers in 0..max. */
function intList(f: Fields, name: string, max: number, lengthMax: number): number[] {
  const v = f[name];
  if (!Array.isArray(v) || v.length > lengthMax) throw new PeerDecodeError(`${name} must be a list of at most ${lengthMax} integers`);
  for (const n of v) if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) throw new PeerDecodeError(`${name} must hold integers in 0..${max}`);
  return v as number[];
}

/** Binary made of whole hashes, at most `hashesMax` of them. */
function hashes(f: Fields, name: string, hashesMax: number): Uint8Array {
  const v = bytes(f, name);
  if (v.length % HASH_BYTES !== 0 || v.length > hashesMax * HASH_BYTES) throw new PeerDecodeError(`${name} must be at most ${hashesMax} hashes of ${HASH_BYTES} bytes`);
  return v;
}

const DIGEST = /^[0-9a-f]{16}$/;

function decodeKeyDigest(value: unknown): KeyDigest {
  const f = record(value, 'key digest');
  const digest = str(f, 'digest', 16);
  if (!DIGEST.test(digest)) throw new PeerDecodeError('digest must be 16 hex digits');
  return { bucket: str(f, 'bucket'), key: str(f, 'key'), digest };
}

export const decodeResponse: { [M in PeerMethod]: (value: unknown) => PeerResponse<M> } = {
  ping: (v) => {
    const f = record(v, 'ping response');
    return { id: str(f, 'id', 255), ringVersion: int(f, 'ringVersion', 0) };
  },
  replicate: (v) => ({ durable: bool(record(v, 'replicate response'), 'durable') }),
  read: (v) => {
    const f = record(v, 'read response');
    return { object: f.object === null || f.object === undefined ? null : bytes(f, 'object') };
  },
  coordinate: (v) => ({ object: bytes(record(v, 'coordinate response'), 'object') }),
  gossip: (v) => {
    const f = record(v, 'gossip response');
    return { digest: decodeDigest(f.digest), ...(f.ring === undefined || f.ring === null ? {} : { ring: decodeRing(f.ring) }) };
  },
  join: (v) => ({ ring: decodeRing(record(v, 'join response').ring) }),
  leave: (v) => ({ ring: decodeRing(record(v, 'leave response').ring) }),
  bucketProps: (v) => ({ ring: decodeRing(record(v, 'bucketProps response').ring) }),
  aeTree: (v) => {
    const f = record(v, 'aeTree response');
    const root = hashes(f, 'root', 1);
    if (root.length !== HASH_BYTES) throw new PeerDecodeError('root must be one hash');
    return { root, branches: hashes(f, 'branches', TREE_DIMENSION_MAX), leaves: hashes(f, 'leaves', TREE_DIMENSION_MAX * TREE_DIMENSION_MAX) };
  },
  aeKeys: (v) => {
    const f = record(v, 'aeKeys response');
    const keys = f.keys;
    if (!Array.isArray(keys) || keys.length > AE_KEYS_PER_CALL_MAX) throw new PeerDecodeError(`keys must be a list of at most ${AE_KEYS_PER_CALL_MAX}`);
    return { keys: keys.map(decodeKeyDigest), truncated: bool(f, 'truncated') };
  },
  handoffBatch: decodeHandoffStatus,
  handoffStatus: decodeHandoffStatus,
  handoffDone: (v) => ({ ring: decodeRing(record(v, 'handoffDone response').ring) }),
  abort: (v) => {
    const f = record(v, 'abort response');
    const ring = decodeRing(f.ring);
    return { ring, aborted: f.aborted === null || f.aborted === undefined ? null : decodeAbortedChange(f.aborted, new Set(ring.members.map((m) => m.id))) };
  },
};

/** What an abort dropped; the members it names must be members of the ring it came with. */
function decodeAbortedChange(value: unknown, members: ReadonlySet<string>): AbortedChange {
  const f = record(value, 'aborted change');
  const ids = (name: string): string[] => {
    const list = f[name];
    if (!Array.isArray(list) || list.length > members.size || list.some((id) => typeof id !== 'string' || !members.has(id))) throw new PeerDecodeError(`${name} must be a list of member ids`);
    return list as string[];
  };
  return { joining: ids('joining'), leaving: ids('leaving'), transfers: int(f, 'transfers', 0, 65536 * 64), transfersDone: int(f, 'transfersDone', 0, 65536 * 64) };
}

/** Error body of a failed peer call: the same codes as the client API's catalogue. */
export function decodePeerError(value: unknown): { code: string; message: string } {
  const f = record(value, 'error');
  return { code: str(f, 'code', 64), message: str(f, 'message', 4096) };
}

// ---- batches: many calls to one peer in one HTTP request ----

/** Calls in one batch at most; the client flushes before reaching it. */
export const BATCH_CALLS_MAX = 256;

/**
 * Estimated bytes of one batch at most (a call alone may be larger). The peer port accepts the
 * largest value plus 1 MiB of framing, so a batch of many objects must stay well under that:
 * several 1 MiB values in one batch would otherwise be refused as a whole (413).
 */
export const BATCH_BYTES_MAX = 512 * 1024;

/** Methods worth batching: the per-key traffic of every client request. */
export const BATCHED_METHODS: readonly PeerMethod[] = ['replicate', 'read'];

export interface BatchedCall {
  readonly method: PeerMethod;
  readonly request: unknown;
}

export type BatchResult = { readonly ok: true; readonly response: unknown } | { readonly ok: false; readonly code: string; readonly message: string };

/** Decodes a batch envelope and each call inside it with that method's own decoder. */
export function decodeBatchRequest(value: unknown): { method: PeerMethod; request: unknown }[] {
  const calls = record(value, 'batch').calls;
  if (!Array.isArray(calls) || calls.length === 0 || calls.length > BATCH_CALLS_MAX) throw new PeerDecodeError(`a batch holds 1..${BATCH_CALLS_MAX} calls`);
  return calls.map((raw) => {
    const f = record(raw, 'batched call');
    const method = f.method as PeerMethod;
    if (!BATCHED_METHODS.includes(method)) throw new PeerDecodeError(`method ${String(f.method)} cannot be batched`);
    return { method, request: decodeRequest[method](f.request) };
  });
}

export function decodeBatchResponse(value: unknown, expected: number): BatchResult[] {
  const results = record(value, 'batch response').results;
  if (!Array.isArray(results) || results.length !== expected) throw new PeerDecodeError(`a batch response must hold ${expected} results`);
  return results.map((raw) => {
    const f = record(raw, 'batch result');
    if (f.ok === true) return { ok: true, response: f.response };
    return { ok: false, code: str(f, 'code', 64), message: str(f, 'message', 4096) };
  });
}
