/**
 * Handoff messages: batches of a partition's objects streamed from an old owner to a new one,
 * the receiver's persisted cursor, and the pending change that travels with the ring.
 */
import type { PendingChange } from '../core/ring';
import { PeerDecodeError, bytes, int, record, str } from './messageFields';

/** Handoff: one batch of a partition's objects, streamed from an old owner to a new one. */
export interface HandoffBatchRequest {
  readonly transferId: string;
  readonly partition: number;
  readonly entries: readonly { readonly bucket: string; readonly key: string; readonly object: Uint8Array }[];
  /** crc32 of the entries' object bytes concatenated in order. */
  readonly checksum: number;
  /** The raw storage key of the last entry: where the stream resumes after this batch. */
  readonly cursor: Uint8Array;
  /** The sender's count of the partition's keys when it began, so the receiver can show progress. */
  readonly keysTotal?: number;
  /**
   * The cursor this batch continues from (null: the start of the range). With it the sender may
   * send a batch before the previous one is answered: the receiver advances its cursor only over
   * an unbroken chain of applied batches, whatever order they arrive in. A batch with no entries
   * and after = cursor asks the receiver to confirm that chain up to `cursor` and make it durable.
   * Absent (older senders): the receiver takes `cursor` as is once the entries are applied.
   */
  readonly after?: Uint8Array | null;
}

/** The receiver's persisted progress: the cursor of the last batch it applied (null: none yet). */
export interface HandoffStatusResponse {
  readonly cursor: Uint8Array | null;
  /** The receiver is busy: the sender waits this long before its next batch (absent or 0: no wait). */
  readonly retryAfterMs?: number;
}

/** The longest wait a receiver may ask of a sender between two batches. */
export const HANDOFF_RETRY_AFTER_MS_MAX = 10_000;

export const HANDOFF_ENTRIES_PER_BATCH_MAX = 10_000;

export function decodePending(value: unknown, partitionCount: number, replicationFactor: number, ids: ReadonlySet<string>): PendingChange {
  const f = record(value, 'pending change');
  const plan = record(f.plan, 'pending plan');
  const owners = plan.owners;
  if (!Array.isArray(owners) || owners.length !== partitionCount) throw new PeerDecodeError('pending plan owners must list every partition');
  const decodedOwners = owners.map((list) => {
    if (!Array.isArray(list) || list.length > replicationFactor || list.some((id) => typeof id !== 'string' || !ids.has(id))) throw new PeerDecodeError('pending plan owners must be lists of known member ids');
    return list as string[];
  });
  const transfers = f.transfers;
  if (!Array.isArray(transfers) || transfers.length > partitionCount * replicationFactor) throw new PeerDecodeError('transfers must be a bounded list');
  return {
    plan: { partitionCount, replicationFactor, owners: decodedOwners },
    transfers: transfers.map((raw) => {
      const t = record(raw, 'transfer');
      const from = str(t, 'from', 255);
      const to = str(t, 'to', 255);
      if (!ids.has(from) || !ids.has(to)) throw new PeerDecodeError('transfer ends must be members');
      if (t.state !== 'waiting' && t.state !== 'done') throw new PeerDecodeError('transfer state must be waiting or done');
      return { id: str(t, 'id', 600), partition: int(t, 'partition', 0, partitionCount - 1), from, to, state: t.state };
    }),
  };
}

export function decodeHandoffBatch(v: unknown): HandoffBatchRequest {
  const f = record(v, 'handoffBatch');
  const entries = f.entries;
  if (!Array.isArray(entries) || entries.length > HANDOFF_ENTRIES_PER_BATCH_MAX) throw new PeerDecodeError(`entries must be a list of at most ${HANDOFF_ENTRIES_PER_BATCH_MAX}`);
  return {
    transferId: str(f, 'transferId', 600),
    partition: int(f, 'partition', 0, 65535),
    entries: entries.map((raw) => {
      const e = record(raw, 'handoff entry');
      return { bucket: str(e, 'bucket'), key: str(e, 'key'), object: bytes(e, 'object') };
    }),
    checksum: int(f, 'checksum', 0, 0xffff_ffff),
    cursor: bytes(f, 'cursor'),
    ...(f.keysTotal === undefined ? {} : { keysTotal: int(f, 'keysTotal', 0, Number.MAX_SAFE_INTEGER) }),
    ...(f.after === undefined ? {} : { after: f.after === null ? null : bytes(f, 'after') }),
  };
}

export function decodeHandoffStatus(v: unknown): HandoffStatusResponse {
  const f = record(v, 'handoff status');
  const cursor = f.cursor === null || f.cursor === undefined ? null : bytes(f, 'cursor');
  return f.retryAfterMs === undefined ? { cursor } : { cursor, retryAfterMs: int(f, 'retryAfterMs', 0, HANDOFF_RETRY_AFTER_MS_MAX) };
}

