/**
 * What this node does for its peers: one function per peer method, each a thin call into the
 * coordinator or membership.
 */
import { decodeContext } from '../core/context';
import type { ConflictMode } from '../core/version';
import { encodeObject } from '../storage/objectCodec';
import type { PeerHandlers } from '../transport/peerServer';
import type { AntiEntropyPeer } from './antiEntropy';
import type { Coordinator } from './coordinator';
import type { HandoffPeer } from './handoff';
import type { Membership } from './membership';

/** Answers anti-entropy calls on a node wired without anti-entropy (the simulator, some tests). */
const NO_ANTI_ENTROPY: AntiEntropyPeer = {
  aeTree: async () => {
    throw new Error('anti-entropy is not wired on this node');
  },
  aeKeys: async () => {
    throw new Error('anti-entropy is not wired on this node');
  },
};

/** Answers handoff calls on a node wired without handoff: it never receives transfers. */
const NO_HANDOFF: HandoffPeer = {
  handoffBatch: async () => {
    throw new Error('handoff is not wired on this node');
  },
  handoffStatus: async () => ({ cursor: null }),
};

export function buildPeerHandlers(
  coordinator: Coordinator,
  membership: Membership,
  conflictModeOf: (bucket: string) => ConflictMode,
  antiEntropy: AntiEntropyPeer = NO_ANTI_ENTROPY,
  handoff: HandoffPeer = NO_HANDOFF,
): PeerHandlers {
  return {
    ping: async () => ({ id: membership.selfId, ringVersion: membership.ring().version }),
    replicate: async (r) => {
      await coordinator.applyReplica(r.partition, r.bucket, r.key, r.object, r.sync, r.hintFor, conflictModeOf(r.bucket));
      return { durable: r.sync };
    },
    read: async (r) => {
      const object = await coordinator.readLocal(r.partition, r.bucket, r.key);
      return { object: object === undefined ? null : encodeObject(object) };
    },
    coordinate: async (r) => {
      const object = await coordinator.put({
        bucket: r.bucket,
        key: r.key,
        value: { value: r.value, contentType: r.contentType, deleted: r.deleted, lastModifiedMs: r.lastModifiedMs },
        context: decodeContext(r.context),
        write: { w: r.w, dw: r.dw, pw: r.pw },
        conflictMode: conflictModeOf(r.bucket),
        hops: r.hops,
      });
      return { object: encodeObject(object) };
    },
    gossip: (r) => membership.handleGossip(r),
    join: async (r) => ({ ring: await membership.handleJoin(r.member, r.partitionCount === undefined || r.replicationFactor === undefined ? undefined : { partitionCount: r.partitionCount, replicationFactor: r.replicationFactor }) }),
    leave: async (r) => ({ ring: await membership.handleLeave(r.id) }),
    bucketProps: async (r) => ({ ring: await membership.handleBucketProps(r.bucket, r.props) }),
    aeTree: (r) => antiEntropy.aeTree(r),
    aeKeys: (r) => antiEntropy.aeKeys(r),
    handoffBatch: (r) => handoff.handoffBatch(r),
    handoffStatus: (r) => handoff.handoffStatus(r),
    handoffDone: async (r) => ({ ring: await membership.handleHandoffDone(r.transferId, true) }),
    abort: async () => {
      const { ring, aborted } = await membership.abort(true);
      return { ring, aborted: aborted ?? null };
    },
  };
}
