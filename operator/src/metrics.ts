/**
 * The operator's Prometheus metrics. The names are a contract with the Grafana dashboard and the
 * alert rules in charts/dynamokv-operator: change them only together.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CONDITION_TYPES, OPERATION_TYPES, type ClusterStatus } from './core/types';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'dynamokv_operator_reconciles_total', help: 'Reconcile passes by result (ok, error, requeue).', labelNames: ['namespace', 'cluster', 'result'], registers: [this.registry] });
  readonly reconcileDuration = new Histogram({
    name: 'dynamokv_operator_reconcile_duration_seconds',
    help: 'Duration of one reconcile pass, including calls to the nodes.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({ name: 'dynamokv_operator_reconcile_errors_total', help: 'Reconcile passes that failed.', labelNames: ['namespace', 'cluster'], registers: [this.registry] });
  readonly condition = new Gauge({ name: 'dynamokv_operator_cluster_condition', help: 'Cluster conditions: 1 true, 0 false.', labelNames: ['namespace', 'cluster', 'condition'], registers: [this.registry] });
  readonly replicas = new Gauge({ name: 'dynamokv_operator_cluster_replicas', help: 'Nodes: desired (spec), ready (pods Ready), members (active in the ring).', labelNames: ['namespace', 'cluster', 'kind'], registers: [this.registry] });
  readonly operation = new Gauge({ name: 'dynamokv_operator_operation_in_progress', help: 'The operation in flight: 1 for its type, 0 for the others.', labelNames: ['namespace', 'cluster', 'type'], registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'dynamokv_operator_is_leader', help: '1 while this process holds the leader Lease.', registers: [this.registry] });
  readonly nodeActions = new Counter({ name: 'dynamokv_operator_node_actions_total', help: 'Actions taken (init, join, leave, pod and claim deletions) by result.', labelNames: ['namespace', 'cluster', 'action', 'result'], registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'dynamokv_operator_queue_depth', help: 'Clusters waiting in the work queue.', registers: [this.registry] });
  readonly queueDropped = new Counter({ name: 'dynamokv_operator_queue_dropped_total', help: 'Queue additions dropped because the queue was full.', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.isLeader.set(0);
  }

  observeStatus(namespace: string, cluster: string, desired: number, status: ClusterStatus): void {
    for (const type of CONDITION_TYPES) {
      const condition = status.conditions.find((c) => c.type === type);
      this.condition.set({ namespace, cluster, condition: type }, condition?.status === 'True' ? 1 : 0);
    }
    this.replicas.set({ namespace, cluster, kind: 'desired' }, desired);
    this.replicas.set({ namespace, cluster, kind: 'ready' }, status.readyReplicas);
    this.replicas.set({ namespace, cluster, kind: 'members' }, status.members.filter((m) => m.state !== 'left').length);
    for (const type of OPERATION_TYPES) this.operation.set({ namespace, cluster, type }, status.operation?.type === type ? 1 : 0);
  }

  /** Drops the series of a deleted cluster so dashboards do not show it forever. */
  forget(namespace: string, cluster: string): void {
    this.reconcileErrors.remove({ namespace, cluster });
    for (const type of CONDITION_TYPES) this.condition.remove({ namespace, cluster, condition: type });
    for (const kind of ['desired', 'ready', 'members']) this.replicas.remove({ namespace, cluster, kind });
    for (const type of OPERATION_TYPES) this.operation.remove({ namespace, cluster, type });
    for (const result of ['ok', 'error', 'requeue']) this.reconciles.remove({ namespace, cluster, result });
  }
}
