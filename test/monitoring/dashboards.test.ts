/**
 * The Grafana dashboards (charts/dynamokv-operator/files/dashboards/) query only metrics that
 * really exist: every metric named in a panel query or a variable query of the cluster dashboard
 * is exported by a running dynamokv node (its /metrics, read here from a real node process), and
 * every one of the operator dashboard by the operator (see operatorMetrics.ts). Every query is
 * also parsed by promtool, so a query the name extraction misreads cannot pass either. The
 * dashboards cover what the issue lists (a panel for each topic, by title). And the alert rules,
 * which would silently never fire on a misspelt metric, pass the same name check.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { helmBinary, yamlMapToJson } from '../helm/helm';
import { NodeProcess, REPO_ROOT, ensureBuilt, killAllNodes } from '../support/nodeProcess';
import { operatorExportedNames } from './operatorMetrics';
import { exportedNames, metricNames, substituteGrafanaVariables } from './promql';
import { promtool, promtoolBinary } from './promtool';

const DASHBOARD_DIR = join(REPO_ROOT, 'charts', 'dynamokv-operator', 'files', 'dashboards');
const RULES = join(REPO_ROOT, 'charts', 'dynamokv-operator', 'files', 'prometheus-rules.yaml');
/** Metrics the alerts read from the kubelet (volume usage), not from dynamokv. */
const KUBELET_METRICS = ['kubelet_volume_stats_available_bytes', 'kubelet_volume_stats_capacity_bytes'];

interface Panel {
  readonly type: string;
  readonly title: string;
  readonly targets?: Array<{ expr?: string }>;
  readonly panels?: Panel[];
}

interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly panels: Panel[];
  readonly templating: { list: Array<{ name: string; type: string; query?: string | { query: string } }> };
}

function loadDashboard(file: string): Dashboard {
  return JSON.parse(readFileSync(join(DASHBOARD_DIR, file), 'utf8')) as Dashboard;
}

function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

function panelQueries(dashboard: Dashboard): string[] {
  return allPanels(dashboard.panels).flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? '').filter((expr) => expr !== ''));
}

/** The metric each `label_values(metric{...}, label)` variable reads. */
function variableMetrics(dashboard: Dashboard): string[] {
  return dashboard.templating.list
    .filter((variable) => variable.type === 'query')
    .map((variable) => (typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '')))
    .map((query) => /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(query)?.[1] ?? `unparsed variable query: ${query}`);
}

function queriedMetrics(dashboard: Dashboard): string[] {
  const names = new Set([...panelQueries(dashboard).flatMap((query) => metricNames(substituteGrafanaVariables(query))), ...variableMetrics(dashboard)]);
  return [...names].sort();
}

const cluster = loadDashboard('dynamokv-cluster.json');
const operator = loadDashboard('dynamokv-operator.json');

let nodeMetrics: Set<string>;
let operatorMetrics: Set<string>;
let dataDir: string;

beforeAll(async () => {
  promtoolBinary();
  helmBinary();
  ensureBuilt();
  dataDir = mkdtempSync(join(tmpdir(), 'dkv-dashboards-'));
  const node = await NodeProcess.start({ nodeId: 'n1', dataDir: join(dataDir, 'n1') });
  // One request of each kind, so the per-operation families have children too.
  await (await fetch(`${node.url}/v1/buckets/b/keys/k`, { method: 'PUT', body: 'v', headers: { 'content-type': 'text/plain' } })).arrayBuffer();
  await (await fetch(`${node.url}/v1/buckets/b/keys/k`)).arrayBuffer();
  nodeMetrics = exportedNames(await (await fetch(`${node.url}/metrics`)).text());
  operatorMetrics = await operatorExportedNames();
}, 5 * 60_000);

afterAll(async () => {
  await killAllNodes();
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
});

describe('metric name extraction', () => {
  test('finds the selected metrics and nothing else', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (operation, le) (rate(dynamokv_request_duration_seconds_bucket{pod=~"kv-[0-9]+", le="1"}[5m])))')).toEqual([
      'dynamokv_request_duration_seconds_bucket',
    ]);
    expect(metricNames('time() - min by (pod) (a_seconds{x="y"}) / on (pod) group_left (z) b_total offset 5m or vector(0) > bool 1e3')).toEqual(['a_seconds', 'b_total']);
  });

  test('reads histogram and summary families from an exposition', () => {
    const names = exportedNames('# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 0\n# TYPE c counter\n# TYPE s summary\n');
    expect([...names].sort()).toEqual(['c', 'h', 'h_bucket', 'h_count', 'h_sum', 's', 's_count', 's_sum']);
  });
});

describe.each([
  ['dynamokv / Cluster', cluster, () => nodeMetrics],
  ['dynamokv / Operator', operator, () => operatorMetrics],
])('the %s dashboard', (_title, dashboard, exported) => {
  test('queries only metrics its source exports', () => {
    const queried = queriedMetrics(dashboard);
    expect(queried.length).toBeGreaterThan(5);
    expect(queried.filter((name) => !exported().has(name))).toEqual([]);
  });

  test('has queries that promtool parses as PromQL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dkv-promql-'));
    try {
      const queries = panelQueries(dashboard).map(substituteGrafanaVariables);
      // A rule file with one recording rule per query: promtool parses each expression.
      const rules = queries.map((query, index) => `      - record: dashboard:query_${index}\n        expr: ${JSON.stringify(query)}`).join('\n');
      writeFileSync(join(dir, 'queries.yaml'), `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
      const result = await promtool(['check', 'rules', join(dir, 'queries.yaml')]);
      expect(result.output).toContain(`SUCCESS: ${queries.length} rules found`);
      expect(result.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('has a unique uid, a data source variable, and a query in every panel', () => {
    expect(dashboard.uid).toMatch(/^dynamokv-/);
    expect(dashboard.templating.list.map((v) => v.name)).toContain('datasource');
    for (const panel of allPanels(dashboard.panels).filter((p) => p.type !== 'row')) expect({ panel: panel.title, queries: (panel.targets ?? []).length > 0 }).toEqual({ panel: panel.title, queries: true });
  });
});

test('the cluster dashboard covers every topic of the issue', () => {
  const titles = allPanels(cluster.panels).map((panel) => panel.title.toLowerCase());
  for (const topic of ['request rate', 'latency percentiles', 'quorum failures', 'siblings', 'hint backlog', 'anti-entropy repairs', 'handoff', 'ownership per node', 'storage size']) {
    expect({ topic, found: titles.some((title) => title.includes(topic)) }).toEqual({ topic, found: true });
  }
});

test('the operator dashboard shows reconciles, their duration and errors, conditions, replicas, operations and the leader', () => {
  const queried = queriedMetrics(operator);
  for (const name of ['dynamokv_operator_reconciles_total', 'dynamokv_operator_reconcile_duration_seconds_bucket', 'dynamokv_operator_reconcile_errors_total', 'dynamokv_operator_cluster_condition', 'dynamokv_operator_cluster_replicas', 'dynamokv_operator_operation_in_progress', 'dynamokv_operator_is_leader']) {
    expect(queried).toContain(name);
  }
});

test('the alert rules query only metrics a node, the operator or the kubelet exports', async () => {
  const rules = (await yamlMapToJson(RULES)) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  const known = new Set([...nodeMetrics, ...operatorMetrics, ...KUBELET_METRICS]);
  const queried = rules.groups.flatMap((group) => group.rules.flatMap((rule) => metricNames(rule.expr)));
  expect(queried).toContain('dynamokv_hint_backlog');
  expect(queried).toContain('dynamokv_operator_reconcile_errors_total');
  expect([...new Set(queried)].filter((name) => !known.has(name))).toEqual([]);
});
