/**
 * The metric names the operator exports, for the operator dashboard check: the exposition of the
 * operator's own registry (operator/src/metrics.ts, the registry its /metrics serves, with
 * prom-client's process and Node.js defaults), read the way Prometheus reads it. The journey test
 * (test/helm/journey.test.ts) also scrapes a running operator pod's /metrics.
 */
import { OperatorMetrics } from '../../operator/src/metrics';
import { exportedNames } from './promql';

export async function operatorExportedNames(): Promise<Set<string>> {
  const metrics = new OperatorMetrics();
  return exportedNames(await metrics.registry.metrics());
}
