/**
 * The last step of handoff on an old owner: a partition this node neither owns in the committed
 * plan nor is receiving, and for which it holds no hints, is deleted in one range delete, after a
 * grace period that lets coordinators still on the old ring finish, and after an anti-entropy
 * exchange with each of its owners found nothing left to repair (so a write only this old owner
 * got reaches them first).
 */
import type { RingState } from '../core/ring';
import { mayDropPartition } from '../core/transition';
import type { StorageEngine } from '../storage/engine';
import { hintRangeForTargetPartition, partitionDataRange } from '../storage/keys';
import type { Membership } from './membership';
import type { Runtime } from './runtime';
import type { TreeStore } from './treeStore';

export interface PartitionDropOptions {
  /** How long a partition must stay droppable before its range is deleted. */
  readonly dropGraceMs: number;
  /** See HandoffOptions.syncBeforeDrop. */
  readonly syncBeforeDrop?: (partition: number, owners: readonly string[]) => Promise<boolean>;
}

export class PartitionDropper {
  private readonly droppableSinceMs = new Map<number, number>();

  constructor(
    private readonly engine: StorageEngine,
    private readonly trees: TreeStore,
    private readonly membership: Membership,
    private readonly runtime: Runtime,
    private readonly options: PartitionDropOptions,
    private readonly onError: (what: string, error: unknown) => void,
    /** Called just before a range is deleted (the node takes a new actor id; see Handoff). */
    private readonly onLocalCopiesDropped: () => void,
  ) {}

  /** One pass over the partitions of `ring`; `stopped` ends it early. */
  async dropUnowned(ring: RingState, stopped: () => boolean): Promise<void> {
    const self = this.membership.selfId;
    const now = this.runtime.nowMs();
    for (let partition = 0; partition < ring.partitionCount; partition++) {
      if (stopped()) return;
      if (!mayDropPartition(ring, self, partition)) {
        this.droppableSinceMs.delete(partition);
        continue;
      }
      const since = this.droppableSinceMs.get(partition) ?? now;
      this.droppableSinceMs.set(partition, since);
      if (now - since < this.options.dropGraceMs) continue;
      if (!(await this.holdsData(partition)) || (await this.holdsHints(ring, partition))) continue;
      // A write during the change may have reached this old owner but not a new one (its extra
      // copy failed, or the coordinator judged the receiver down, after the stream had passed the
      // key): the new owners get whatever this copy has that they lack before it goes.
      const owners = (this.membership.ring().plan.owners[partition] ?? []).filter((id) => id !== self);
      if (!(await this.syncedBeforeDrop(partition, owners))) continue;
      // The ring may have moved on while this round awaited storage (a change that brings the
      // partition back, or an aborted one): decide on the ring of now, just before deleting.
      if (!mayDropPartition(this.membership.ring(), self, partition)) continue;
      this.onLocalCopiesDropped();
      await this.engine.deleteRange(partitionDataRange(partition));
      this.trees.forget(partition);
    }
  }

  /** Whether the owners are in step with this copy; a failed exchange means not yet (next tick retries). */
  private async syncedBeforeDrop(partition: number, owners: readonly string[]): Promise<boolean> {
    if (this.options.syncBeforeDrop === undefined) return true;
    try {
      return await this.options.syncBeforeDrop(partition, owners);
    } catch (error) {
      this.onError(`sync of partition ${partition} before dropping it`, error);
      return false;
    }
  }

  private async holdsData(partition: number): Promise<boolean> {
    for await (const _ of this.engine.scan({ ...partitionDataRange(partition), limit: 1 })) return true;
    return false;
  }

  /** Hinted copies live in the partition's data range; they stay until delivered. */
  private async holdsHints(ring: RingState, partition: number): Promise<boolean> {
    for (const member of ring.members) {
      for await (const _ of this.engine.scan({ ...hintRangeForTargetPartition(member.id, partition), limit: 1 })) return true;
    }
    return false;
  }
}
