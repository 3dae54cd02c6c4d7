/**
 * Cluster metrics of one node: read repair, forwarding, hinted handoff, and this node's view of
 * the ring. They register on the node's own registry beside the request metrics.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AntiEntropyMetrics } from './cluster/antiEntropy';
import type { CoordinatorMetrics } from './cluster/coordinator';
import type { HintMetrics } from './cluster/hints';
import type { Membership } from './cluster/membership';
import { activeMembers, ownershipShares } from './core/ring';

export class ClusterMetrics implements CoordinatorMetrics, HintMetrics, AntiEntropyMetrics {
  private readonly quorumFailures: Counter;
  private readonly readRepairs: Counter;
  private readonly forwards: Counter;
  private readonly hintsDelivered: Counter;
  private readonly hintBacklog: Gauge;
  private readonly siblingsDroppedTotal: (count: number) => void;
  private readonly aeExchanges: Counter;
  private readonly aeKeysRepaired: Counter;
  private readonly aeBytes: Counter;
  /** Labelled by partition: at most Q series. */
  private readonly aeLastExchange: Gauge;
  private readonly handoffBytesTotal: Counter;
  private readonly handoffKeysTotal: Counter;
  private readonly handoffTransfersPending: Gauge;

  constructor(registry: Registry, membership: () => Membership | undefined, siblingsDropped: (count: number) => void) {
    const registers = [registry];
    this.siblingsDroppedTotal = siblingsDropped;
    this.quorumFailures = new Counter({
      name: 'dynamokv_quorum_failures_total',
      help: 'Client requests this node coordinated that failed for want of replicas (503 QUORUM_UNAVAILABLE).',
      labelNames: ['operation'],
      registers,
    });
    this.readRepairs = new Counter({ name: 'dynamokv_read_repairs_total', help: 'Replicas repaired after a read found them stale or missing.', registers });
    this.forwards = new Counter({ name: 'dynamokv_forwarded_writes_total', help: 'Writes this node forwarded to a replica of the key.', registers });
    this.hintsDelivered = new Counter({ name: 'dynamokv_hints_delivered_total', help: 'Hinted writes delivered to their owner and removed.', registers });
    this.hintBacklog = new Gauge({ name: 'dynamokv_hint_backlog', help: 'Hinted writes stored on this node waiting for delivery.', registers });
    this.aeExchanges = new Counter({ name: 'dynamokv_anti_entropy_exchanges_total', help: 'Anti-entropy tree exchanges this node started and finished.', registers });
    this.aeKeysRepaired = new Counter({ name: 'dynamokv_anti_entropy_keys_repaired_total', help: 'Keys anti-entropy repaired on either side of an exchange.', registers });
    this.aeBytes = new Counter({ name: 'dynamokv_anti_entropy_bytes_total', help: 'Bytes of hashes, key listings and objects moved by anti-entropy exchanges.', registers });
    this.handoffBytesTotal = new Counter({ name: 'dynamokv_handoff_bytes_total', help: 'Object bytes this node streamed to new owners of partitions.', registers });
    this.handoffKeysTotal = new Counter({ name: 'dynamokv_handoff_keys_total', help: 'Objects this node streamed to new owners of partitions.', registers });
    this.handoffTransfersPending = new Gauge({ name: 'dynamokv_handoff_transfers_pending', help: 'Partition transfers of the pending membership change not yet done.', registers });
    this.aeLastExchange = new Gauge({
      name: 'dynamokv_anti_entropy_last_exchange_timestamp_seconds',
      help: 'When this node last finished an anti-entropy exchange of the partition (Unix seconds).',
      labelNames: ['partition'],
      registers,
    });
    new Gauge({
      name: 'dynamokv_ring_version',
      help: 'Version of the ring this node holds.',
      registers,
      collect() {
        const m = membership();
        if (m) this.set(m.ring().version);
      },
    });
    new Gauge({
      name: 'dynamokv_ring_members',
      help: 'Members of the ring by state, as this node sees it.',
      labelNames: ['state'],
      registers,
      collect() {
        const m = membership();
        if (!m) return;
        this.reset();
        for (const state of ['joining', 'normal', 'leaving', 'left']) this.set({ state }, m.ring().members.filter((x) => x.state === state).length);
      },
    });
    new Gauge({
      name: 'dynamokv_ring_ownership_ratio',
      help: 'Share of the partition replicas each active member owns in the ring this node holds (sums to 1).',
      labelNames: ['member'],
      registers,
      collect() {
        const m = membership();
        if (!m) return;
        this.reset();
        for (const [member, share] of Object.entries(ownershipShares(m.ring()))) this.set({ member }, share);
      },
    });
    new Gauge({
      name: 'dynamokv_members_up',
      help: 'Active ring members this node judges reachable (itself included).',
      registers,
      collect() {
        const m = membership();
        if (m) this.set(activeMembers(m.ring()).filter((x) => m.isUp(x.id)).length);
      },
    });
  }

  quorumFailed(operation: 'get' | 'put' | 'delete'): void {
    this.quorumFailures.inc({ operation });
  }

  readRepair(count: number): void {
    this.readRepairs.inc(count);
  }

  siblingsDropped(count: number): void {
    this.siblingsDroppedTotal(count);
  }

  forwarded(): void {
    this.forwards.inc();
  }

  delivered(count: number): void {
    this.hintsDelivered.inc(count);
  }

  backlog(total: number): void {
    this.hintBacklog.set(total);
  }

  exchanged(partition: number, atMs: number): void {
    this.aeExchanges.inc();
    this.aeLastExchange.set({ partition: String(partition) }, atMs / 1000);
  }

  keysRepaired(count: number): void {
    this.aeKeysRepaired.inc(count);
  }

  bytesExchanged(count: number): void {
    this.aeBytes.inc(count);
  }

  handoffBytes(count: number): void {
    this.handoffBytesTotal.inc(count);
  }

  handoffKeys(count: number): void {
    this.handoffKeysTotal.inc(count);
  }

  handoffPending(count: number): void {
    this.handoffTransfersPending.set(count);
  }
}
