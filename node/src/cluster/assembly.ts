/**
 * One node's cluster layer, assembled from its parts: membership, coordinator, hint delivery,
 * anti-entropy trees and exchanges, handoff, the tombstone reaper, and the peer handlers that
 * serve them. Production (clusterWiring.ts) and the deterministic simulator (test/sim) both build
 * their nodes here, so the simulator runs exactly the wiring a real node runs: the same hooks
 * (every stored change feeds the trees and the reaper), the same actor-id renewals before copies
 * are forgotten, the same sync of a partition with its owners before handoff drops it. Only the
 * clock, the network and the disk differ.
 */
import type { TreeShape } from '../core/tictac';
import type { Member } from '../core/ring';
import type { StorageEngine } from '../storage/engine';
import type { ObjectStore } from '../storage/objectStore';
import type { PeerTransport } from '../transport/peerClient';
import type { PeerHandlers } from '../transport/peerServer';
import { AntiEntropy, type AntiEntropyMetrics } from './antiEntropy';
import { ALWAYS_ADMIT, type BackgroundAdmission } from './backgroundBudget';
import { Coordinator, type CoordinatorMetrics, type MergeObjects } from './coordinator';
import { Handoff, type HandoffMetrics } from './handoff';
import { HintDeliverer, type HintMetrics } from './hints';
import { Membership } from './membership';
import { buildPeerHandlers } from './peerHandlers';
import { Reaper, type ReaperMetrics } from './reaper';
import type { Runtime } from './runtime';
import { TreeStore } from './treeStore';

/** Every knob of the cluster layer, in the units its parts take. */
export interface ClusterSettings {
  readonly partitionCount: number;
  readonly replicationFactor: number;
  readonly gossipIntervalMs: number;
  /** Timeout of one replica call; longer background calls are multiples of it. */
  readonly replicaTimeoutMs: number;
  readonly maxSiblings: number;
  readonly hints: { readonly intervalMs: number; readonly batchSize: number; readonly hintsPerSecondMax: number; readonly backoffMaxMs: number };
  readonly trees: { readonly shape: TreeShape; readonly scanPageSize: number; readonly keysPerPartitionMax: number };
  readonly antiEntropy: { readonly intervalMs: number; readonly keysPerExchangeMax: number; readonly bytesPerExchangeMax: number };
  readonly handoff: {
    readonly enabled: boolean;
    readonly intervalMs: number;
    readonly batchKeysMax: number;
    readonly batchBytesMax: number;
    readonly bytesPerSecondMax: number;
    readonly concurrencyMax: number;
  };
  readonly tombstones: { readonly graceMs: number; readonly reapIntervalMs: number; readonly keysPerRoundMax: number; readonly scanKeysPerRoundMax: number };
}

export type ClusterLoopMetrics = CoordinatorMetrics & HintMetrics & AntiEntropyMetrics & HandoffMetrics;

export interface NodeParts {
  readonly self: Omit<Member, 'state'>;
  readonly engine: StorageEngine;
  readonly store: ObjectStore;
  readonly transport: PeerTransport;
  readonly runtime: Runtime;
  readonly settings: ClusterSettings;
  readonly metrics: ClusterLoopMetrics;
  readonly reaperMetrics: ReaperMetrics;
  /**
   * A fresh actor id for version dots, never used before by this node. Called at assembly and
   * whenever the node forgets copies (hints delivered, a partition dropped, tombstones reaped).
   */
  readonly newActorId: () => string;
  readonly onError: (what: string, error: unknown) => void;
  /** Admission of background work; absent: never wait. */
  readonly budget?: BackgroundAdmission;
  /** Another merge for the coordinator (only the simulator's broken-merge test swaps it). */
  readonly mergeObjects?: MergeObjects;
}

export interface AssembledNode {
  readonly membership: Membership;
  readonly coordinator: Coordinator;
  readonly hints: HintDeliverer;
  readonly trees: TreeStore;
  readonly antiEntropy: AntiEntropy;
  readonly handoff: Handoff;
  readonly reaper: Reaper;
  readonly handlers: PeerHandlers;
  actorId(): string;
  renewActorId(): void;
  /** Starts gossip (loads the ring from storage first); the background loops start separately. */
  startMembership(): Promise<void>;
  startLoops(): void;
  /** Stops every loop and gossip; waits for the loops' current rounds. */
  stop(): Promise<void>;
}

export function assembleNode(parts: NodeParts): AssembledNode {
  const { engine, store, transport, runtime, settings, metrics, onError } = parts;
  const budget = parts.budget ?? ALWAYS_ADMIT;
  let actorId = parts.newActorId();
  const renewActorId = () => {
    actorId = parts.newActorId();
  };
  const membership = new Membership(
    engine,
    transport,
    runtime,
    {
      self: parts.self,
      partitionCount: settings.partitionCount,
      replicationFactor: settings.replicationFactor,
      gossipIntervalMs: settings.gossipIntervalMs,
      peerTimeoutMs: settings.replicaTimeoutMs,
      handoff: settings.handoff.enabled,
    },
    onError,
  );
  const coordinator = new Coordinator(store, membership, transport, () => actorId, metrics, {
    replicaTimeoutMs: settings.replicaTimeoutMs,
    forwardHopsMax: 1,
    maxSiblings: settings.maxSiblings,
    ...(parts.mergeObjects === undefined ? {} : { mergeObjects: parts.mergeObjects }),
  });
  const hints = new HintDeliverer(engine, store, membership, transport, runtime, metrics, { ...settings.hints, timeoutMs: settings.replicaTimeoutMs, budget }, onError, renewActorId);
  // Trees follow every write from here on; each is built from storage the first time it is used.
  const trees = new TreeStore(store, settings.trees);
  const reaper = new Reaper(
    engine,
    store,
    membership,
    transport,
    runtime,
    parts.reaperMetrics,
    {
      intervalMs: settings.tombstones.reapIntervalMs,
      graceMs: settings.tombstones.graceMs,
      keysPerRoundMax: settings.tombstones.keysPerRoundMax,
      scanKeysPerRoundMax: settings.tombstones.scanKeysPerRoundMax,
      timeoutMs: settings.replicaTimeoutMs,
    },
    renewActorId,
    onError,
  );
  store.onObjectChanged = (partition, bucket, key, before, after) => {
    trees.observe(partition, bucket, key, before, after);
    reaper.observe(partition, bucket, key, before, after);
  };
  const antiEntropy = new AntiEntropy(
    store,
    trees,
    coordinator,
    membership,
    transport,
    runtime,
    metrics,
    {
      ...settings.antiEntropy,
      timeoutMs: settings.replicaTimeoutMs * 5,
      maxSiblings: settings.maxSiblings,
      budget,
      // Only a node that reaps leaves old tombstones alone; with reaping off every difference is repaired.
      ...(settings.tombstones.reapIntervalMs > 0 ? { tombstoneGraceMs: settings.tombstones.graceMs } : {}),
    },
    onError,
  );
  const conflictModeOf = (bucket: string) => membership.ring().buckets[bucket]?.conflictMode ?? 'siblings';
  const handoff = new Handoff(
    engine,
    trees,
    coordinator,
    membership,
    transport,
    runtime,
    metrics,
    {
      intervalMs: settings.handoff.intervalMs,
      batchKeysMax: settings.handoff.batchKeysMax,
      batchBytesMax: settings.handoff.batchBytesMax,
      bytesPerSecondMax: settings.handoff.bytesPerSecondMax,
      concurrencyMax: settings.handoff.concurrencyMax,
      timeoutMs: settings.replicaTimeoutMs * 10,
      // Long enough for the committed ring to reach every node by gossip.
      dropGraceMs: settings.gossipIntervalMs * 10,
      budget,
      syncBeforeDrop: (partition, owners) => antiEntropy.syncPartition(partition, owners),
      syncBeforeStream: (partition, owner) => antiEntropy.syncPartition(partition, [owner]),
      // Received objects for keys without a local copy are written as received, a chunk at a time.
      store,
    },
    conflictModeOf,
    onError,
    renewActorId,
  );
  const handlers = buildPeerHandlers(coordinator, membership, conflictModeOf, antiEntropy, handoff);
  return {
    membership,
    coordinator,
    hints,
    trees,
    antiEntropy,
    handoff,
    reaper,
    handlers,
    actorId: () => actorId,
    renewActorId,
    startMembership: () => membership.start(),
    startLoops: () => {
      hints.start();
      antiEntropy.start();
      handoff.start();
      reaper.start();
    },
    stop: async () => {
      membership.stop();
      hints.stop();
      await antiEntropy.stop();
      await handoff.stop();
      await reaper.stop();
    },
  };
}
