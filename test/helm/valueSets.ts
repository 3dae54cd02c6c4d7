/**
 * The value sets the chart tests render (the "several value sets"): chart.test.ts asserts
 * on what each renders, and dryRun.test.ts sends each to the API server.
 */
import type { Values } from './helm';

export const VALUE_SETS: Readonly<Record<string, Values>> = {
  defaults: {},
  watchNamespaces: { watchNamespaces: ['team-a', 'team-b'] },
  monitoring: {
    monitoring: {
      podMonitor: { enabled: true, labels: { release: 'prometheus' } },
      serviceMonitor: { enabled: true },
      prometheusRule: { enabled: true, labels: { release: 'prometheus' } },
      grafanaDashboards: { enabled: true },
    },
  },
  networkPolicy: { networkPolicy: { enabled: true, clusters: [{ name: 'kv', namespace: 'team-a' }, { name: 'orders', namespace: 'team-b' }] } },
  ha: { replicaCount: 2 },
};
