/**
 * The Helm chart, rendered by a real helm (helm.sh/helm/v3 built from the Go module proxy):
 * `helm lint --strict` passes for every value set the tests use, and `helm template` of each set
 * produces what the chart promises - least-privilege RBAC (cluster-wide, or namespaced with nothing
 * cluster-scoped), a locked-down operator Deployment wired to the operator's configuration, the
 * monitoring objects, and NetworkPolicies that open the peer port only inside one cluster. The
 * schema refuses bad values. Each test renders the chart and asserts on the parsed objects.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  CHART_DIR, RELEASE, RELEASE_NAMESPACE, chartFile, helmBinary, lintChart, ofKind, renderChart, renderChartError, single, yamlMapToJson, type Rendered, type RenderedObject,
} from './helm';
import { VALUE_SETS } from './valueSets';

interface PolicyRule {
  readonly apiGroups?: string[];
  readonly resources?: string[];
  readonly resourceNames?: string[];
  readonly verbs: string[];
  readonly nonResourceURLs?: string[];
}

/**
 * Every permission the operator may have in a namespace it manages, as "group/resource" -> verbs.
 * Widening any of them must change this table on purpose; the journey test (journey.test.ts) runs
 * the real operator under exactly these and fails if it needs more.
 */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  'dynamokv.io/dynamoclusters': ['get', 'list', 'watch'],
  'dynamokv.io/dynamoclusters/status': ['get', 'update', 'patch'],
  'dynamokv.io/dynamoclusters/finalizers': ['update'],
  'apps/statefulsets': ['get', 'list', 'watch', 'create', 'patch'],
  'core/services': ['get', 'list', 'watch', 'create', 'patch'],
  'core/configmaps': ['get', 'list', 'watch', 'create', 'patch'],
  'core/secrets': ['get', 'list', 'watch', 'create'],
  'policy/poddisruptionbudgets': ['get', 'list', 'watch', 'create', 'patch'],
  'monitoring.coreos.com/servicemonitors': ['get', 'list', 'watch', 'create', 'patch'],
  'core/pods': ['get', 'list', 'watch', 'delete'],
  'core/persistentvolumeclaims': ['get', 'list', 'delete'],
  'core/events': ['create', 'patch'],
};

/** Flattens rules to "group/resource" -> sorted verbs, failing on anything a table cannot hold. */
function permissions(rules: readonly PolicyRule[]): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const rule of rules) {
    expect(rule.nonResourceURLs).toBeUndefined();
    expect(rule.resourceNames).toBeUndefined();
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        const key = `${group === '' ? 'core' : group}/${resource}`;
        result[key] = [...new Set([...(result[key] ?? []), ...rule.verbs])].sort();
      }
    }
  }
  return result;
}

const sortedAllowed = Object.fromEntries(Object.entries(ALLOWED).map(([key, verbs]) => [key, [...verbs].sort()]));

function rulesOf(object: RenderedObject): PolicyRule[] {
  return (object.rules ?? []) as PolicyRule[];
}

function assertNoDangerousRules(rendered: Rendered): void {
  for (const object of rendered.objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
    for (const rule of rulesOf(object)) {
      const words = [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs];
      expect(words).not.toContain('*');
      for (const verb of ['escalate', 'bind', 'impersonate', 'deletecollection']) expect(rule.verbs).not.toContain(verb);
    }
  }
}

interface Container {
  readonly name: string;
  readonly image: string;
  readonly env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  readonly ports: Array<{ name: string; containerPort: number }>;
  readonly livenessProbe: { httpGet: { path: string; port: string } };
  readonly readinessProbe: { httpGet: { path: string; port: string } };
  readonly resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  readonly securityContext: Record<string, unknown> & { capabilities: { drop: string[] } };
}

interface Deployment extends RenderedObject {
  readonly spec: {
    replicas: number;
    strategy: { type: string; rollingUpdate?: { maxUnavailable: number } };
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: { serviceAccountName: string; securityContext: Record<string, unknown>; containers: Container[] } };
  };
}

function operatorDeployment(rendered: Rendered): Deployment {
  return single(rendered, 'Deployment') as Deployment;
}

function envOf(container: Container): Record<string, string> {
  return Object.fromEntries(container.env.map((e) => [e.name, e.value ?? `fieldRef:${e.valueFrom?.fieldRef?.fieldPath ?? '?'}`]));
}

const appVersion = /^appVersion:\s*"?([^"\n]+)"?$/m.exec(chartFile('Chart.yaml'))?.[1];

beforeAll(() => {
  helmBinary();
}, 15 * 60_000);

describe('helm lint --strict', () => {
  test.each(Object.entries(VALUE_SETS))('passes with the %s values', async (_name, values) => {
    const result = await lintChart(values);
    expect(`${result.stdout}${result.stderr}`).toContain('0 chart(s) failed');
    expect(result.code).toBe(0);
  });
});

describe('default values', () => {
  let rendered: Rendered;
  beforeAll(async () => {
    rendered = await renderChart(VALUE_SETS.defaults);
  });

  test('render the operator, its ServiceAccount, cluster-wide RBAC, the Lease Role and the metrics Service, nothing optional', () => {
    const kinds = rendered.objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(kinds).toEqual([
      `ClusterRole/${RELEASE}-dynamokv-operator`,
      `ClusterRoleBinding/${RELEASE}-dynamokv-operator`,
      `Deployment/${RELEASE}-dynamokv-operator`,
      `Role/${RELEASE}-dynamokv-operator-leader-election`,
      `RoleBinding/${RELEASE}-dynamokv-operator-leader-election`,
      `Service/${RELEASE}-dynamokv-operator-metrics`,
      `ServiceAccount/${RELEASE}-dynamokv-operator`,
    ]);
    for (const object of rendered.objects.filter((o) => !o.kind.startsWith('Cluster'))) expect(object.metadata.namespace).toBe(RELEASE_NAMESPACE);
  });

  test('the ClusterRole grants exactly the allowed permissions, nothing wildcard or escalating', () => {
    assertNoDangerousRules(rendered);
    expect(permissions(rulesOf(single(rendered, 'ClusterRole')))).toEqual(sortedAllowed);
    const binding = single(rendered, 'ClusterRoleBinding') as RenderedObject & { roleRef: { kind: string; name: string }; subjects: Array<Record<string, string>> };
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: `${RELEASE}-dynamokv-operator` });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: `${RELEASE}-dynamokv-operator`, namespace: RELEASE_NAMESPACE }]);
  });

  test('the Lease Role may create Leases, and touch only the one it names', () => {
    const role = single(rendered, 'Role');
    const rules = rulesOf(role);
    expect(rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['dynamokv-operator'], verbs: ['get', 'update', 'patch'] },
    ]);
  });

  test('the operator runs non-root with a read-only root filesystem, no capabilities and RuntimeDefault seccomp', () => {
    const pod = operatorDeployment(rendered).spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    const container = pod.containers[0] as Container;
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true });
    expect(container.securityContext.capabilities.drop).toEqual(['ALL']);
    expect(container.resources.requests).toEqual({ cpu: '50m', memory: '128Mi' });
    expect(container.resources.limits).toEqual({ memory: '256Mi' });
  });

  test('the operator is configured through exactly the environment it reads, and probed on /healthz', () => {
    const deployment = operatorDeployment(rendered);
    const container = deployment.spec.template.spec.containers[0] as Container;
    expect(container.image).toBe(`dynamokv/operator:${appVersion}`);
    expect(envOf(container)).toEqual({
      WATCH_NAMESPACES: '',
      OPERATOR_NAMESPACE: 'fieldRef:metadata.namespace',
      POD_NAME: 'fieldRef:metadata.name',
      LEADER_ELECTION: 'true',
      LEASE_NAME: 'dynamokv-operator',
      METRICS_PORT: '8080',
      DEFAULT_NODE_IMAGE: `dynamokv/node:${appVersion}`,
      LOG_LEVEL: 'info',
    });
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
    for (const probe of [container.livenessProbe, container.readinessProbe]) expect(probe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(deployment.spec.template.spec.serviceAccountName).toBe(`${RELEASE}-dynamokv-operator`);
    // The selector must pick the pods it creates, and nothing that changes on upgrade.
    expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(Object.keys(deployment.spec.selector.matchLabels).sort()).toEqual(['app.kubernetes.io/instance', 'app.kubernetes.io/name']);
  });

  test('image names and tags come from the values', async () => {
    const custom = await renderChart({ image: { repository: 'registry.example/dkv-operator', tag: '1.2.3' }, nodeImage: { repository: 'registry.example/dkv-node', tag: '1.2.4' } });
    const container = operatorDeployment(custom).spec.template.spec.containers[0] as Container;
    expect(container.image).toBe('registry.example/dkv-operator:1.2.3');
    expect(envOf(container).DEFAULT_NODE_IMAGE).toBe('registry.example/dkv-node:1.2.4');
  });
});

describe('watchNamespaces', () => {
  test('gives one Role per watched namespace with the same permissions, and nothing cluster-scoped', async () => {
    const rendered = await renderChart(VALUE_SETS.watchNamespaces);
    assertNoDangerousRules(rendered);
    expect(rendered.objects.filter((o) => o.kind.startsWith('Cluster'))).toEqual([]);
    const roles = ofKind(rendered, 'Role', `${RELEASE}-dynamokv-operator`);
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(['team-a', 'team-b']);
    for (const role of roles) expect(permissions(rulesOf(role))).toEqual(sortedAllowed);
    const bindings = ofKind(rendered, 'RoleBinding', `${RELEASE}-dynamokv-operator`) as Array<RenderedObject & { roleRef: { kind: string }; subjects: Array<Record<string, string>> }>;
    expect(bindings.map((b) => b.metadata.namespace).sort()).toEqual(['team-a', 'team-b']);
    for (const binding of bindings) {
      expect(binding.roleRef.kind).toBe('Role');
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: `${RELEASE}-dynamokv-operator`, namespace: RELEASE_NAMESPACE }]);
    }
    const container = operatorDeployment(rendered).spec.template.spec.containers[0] as Container;
    expect(envOf(container).WATCH_NAMESPACES).toBe('team-a,team-b');
    // The Lease stays in the operator's own namespace.
    expect(single(rendered, 'Role', `${RELEASE}-dynamokv-operator-leader-election`).metadata.namespace).toBe(RELEASE_NAMESPACE);
  });

  test('rbac.create=false renders no RBAC at all', async () => {
    const rendered = await renderChart({ rbac: { create: false } });
    expect(rendered.objects.filter((o) => /Role/.test(o.kind))).toEqual([]);
  });
});

describe('leader election and high availability', () => {
  test('two replicas roll one at a time and get a PodDisruptionBudget', async () => {
    const rendered = await renderChart(VALUE_SETS.ha);
    const deployment = operatorDeployment(rendered);
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const pdb = single(rendered, 'PodDisruptionBudget') as RenderedObject & { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
    expect(pdb.spec.minAvailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });

  test('without leader election the old pod stops before a new one starts, and no Lease Role exists', async () => {
    const rendered = await renderChart({ leaderElection: { enabled: false } });
    const deployment = operatorDeployment(rendered);
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
    expect(envOf(deployment.spec.template.spec.containers[0] as Container).LEADER_ELECTION).toBe('false');
    expect(ofKind(rendered, 'Role')).toEqual([]);
  });

  test('two replicas without leader election are refused', async () => {
    expect(await renderChartError({ replicaCount: 2, leaderElection: { enabled: false } })).toContain('needs leaderElection.enabled');
  });
});

describe('monitoring', () => {
  let rendered: Rendered;
  beforeAll(async () => {
    rendered = await renderChart(VALUE_SETS.monitoring);
  });

  test('the PodMonitor and ServiceMonitor scrape the operator pods with honorLabels', () => {
    const deployment = operatorDeployment(rendered);
    const podMonitor = single(rendered, 'PodMonitor') as RenderedObject & { spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: Array<Record<string, unknown>> } };
    expect(podMonitor.metadata.labels?.release).toBe('prometheus');
    expect(podMonitor.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    expect(podMonitor.spec.podMetricsEndpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s', honorLabels: true }]);
    const serviceMonitor = single(rendered, 'ServiceMonitor') as RenderedObject & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<Record<string, unknown>> } };
    const service = single(rendered, 'Service') as RenderedObject & { spec: { selector: Record<string, string>; ports: Array<{ name: string }> } };
    expect(service.metadata.labels).toMatchObject(serviceMonitor.spec.selector.matchLabels);
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(serviceMonitor.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s', honorLabels: true }]);
  });

  test('the PrometheusRule carries every alert of files/prometheus-rules.yaml, and disabledAlerts leaves one out', async () => {
    const alertNames = [...chartFile('files/prometheus-rules.yaml').matchAll(/^\s*- alert: (\w+)$/gm)].map((m) => m[1]);
    expect(alertNames.length).toBeGreaterThanOrEqual(7);
    const renderedAlerts = (rule: RenderedObject) =>
      (rule.spec as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap((g) => g.rules.map((r) => r.alert));
    const rule = single(rendered, 'PrometheusRule');
    expect(rule.metadata.labels?.release).toBe('prometheus');
    expect(renderedAlerts(rule)).toEqual(alertNames);
    // Not only the names: every group and rule is carried over unchanged.
    const ruleFile = (await yamlMapToJson(join(CHART_DIR, 'files', 'prometheus-rules.yaml'))) as { groups: unknown };
    expect((rule.spec as { groups: unknown }).groups).toEqual(ruleFile.groups);
    const fewer = await renderChart({ monitoring: { prometheusRule: { enabled: true, disabledAlerts: ['DynamokvDiskNearlyFull'] } } });
    expect(renderedAlerts(single(fewer, 'PrometheusRule'))).toEqual(alertNames.filter((name) => name !== 'DynamokvDiskNearlyFull'));
    // The schema's list of alert names that may be disabled is exactly the alerts that exist.
    const schema = JSON.parse(chartFile('values.schema.json')) as {
      properties: { monitoring: { properties: { prometheusRule: { properties: { disabledAlerts: { items: { enum: string[] } } } } } } };
    };
    expect([...schema.properties.monitoring.properties.prometheusRule.properties.disabledAlerts.items.enum].sort()).toEqual([...alertNames].sort());
  });

  test('each dashboard is a ConfigMap with the Grafana sidecar label, holding the JSON file unchanged', () => {
    const configMaps = ofKind(rendered, 'ConfigMap') as Array<RenderedObject & { data: Record<string, string> }>;
    expect(configMaps.map((c) => Object.keys(c.data)).flat().sort()).toEqual(['dynamokv-cluster.json', 'dynamokv-operator.json']);
    for (const configMap of configMaps) {
      expect(configMap.metadata.labels?.grafana_dashboard).toBe('1');
      for (const [file, content] of Object.entries(configMap.data)) {
        expect(JSON.parse(content)).toEqual(JSON.parse(readFileSync(join(CHART_DIR, 'files', 'dashboards', file), 'utf8')));
      }
    }
  });

  test('a ServiceMonitor without the metrics Service is refused', async () => {
    expect(await renderChartError({ monitoring: { serviceMonitor: { enabled: true } }, metrics: { service: { enabled: false } } })).toContain('needs metrics.service.enabled');
  });
});

interface NetworkPolicy extends RenderedObject {
  readonly spec: {
    podSelector: { matchLabels: Record<string, string> };
    policyTypes: string[];
    ingress: Array<{ from?: Array<{ podSelector?: { matchLabels: Record<string, string> }; namespaceSelector?: { matchLabels: Record<string, string> } }>; ports: Array<{ port: number; protocol: string }> }>;
  };
}

describe('networkPolicy', () => {
  test('opens each cluster\'s peer port only to its own pods, and the client port to everyone by default', async () => {
    const rendered = await renderChart(VALUE_SETS.networkPolicy);
    for (const [cluster, namespace] of [['kv', 'team-a'], ['orders', 'team-b']] as const) {
      const policy = single(rendered, 'NetworkPolicy', `dynamokv-${cluster}`) as NetworkPolicy;
      const clusterPods = { 'app.kubernetes.io/name': 'dynamokv', 'app.kubernetes.io/instance': cluster };
      expect(policy.metadata.namespace).toBe(namespace);
      expect(policy.spec.podSelector.matchLabels).toEqual(clusterPods);
      expect(policy.spec.policyTypes).toEqual(['Ingress']);
      const peerRules = policy.spec.ingress.filter((rule) => rule.ports.some((p) => p.port === 9080));
      expect(peerRules).toEqual([{ from: [{ podSelector: { matchLabels: clusterPods } }], ports: [{ protocol: 'TCP', port: 9080 }] }]);
      const clientRules = policy.spec.ingress.filter((rule) => rule.ports.some((p) => p.port === 8080));
      expect(clientRules).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }]);
      expect(policy.spec.ingress).toHaveLength(2);
    }
    const operatorPolicy = single(rendered, 'NetworkPolicy', `${RELEASE}-dynamokv-operator`) as NetworkPolicy;
    expect(operatorPolicy.spec.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }]);
  });

  test('with clientFrom, the client port admits those peers, the cluster itself and the operator only', async () => {
    const ingressNamespace = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress' } } };
    const rendered = await renderChart({ networkPolicy: { enabled: true, clusters: [{ name: 'kv', namespace: 'team-a' }], clientFrom: [ingressNamespace] } });
    const policy = single(rendered, 'NetworkPolicy', 'dynamokv-kv') as NetworkPolicy;
    const clientRule = policy.spec.ingress.find((rule) => rule.ports.some((p) => p.port === 8080));
    expect(clientRule?.from).toEqual([
      { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'dynamokv', 'app.kubernetes.io/instance': 'kv' } } },
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': RELEASE_NAMESPACE } },
        podSelector: { matchLabels: operatorDeployment(rendered).spec.selector.matchLabels },
      },
      ingressNamespace,
    ]);
  });
});

describe('values.schema.json', () => {
  test.each([
    ['an unknown top-level key', { replicas: 3 }, "additional properties 'replicas' not allowed"],
    ['a misspelt nested key', { monitoring: { podMonitor: { enable: true } } }, "additional properties 'enable' not allowed"],
    ['zero replicas', { replicaCount: 0 }, 'minimum'],
    ['an invalid pull policy', { image: { pullPolicy: 'Sometimes' } }, 'pullPolicy'],
    ['a namespace that is not a DNS label', { watchNamespaces: ['Team_A'] }, 'watchNamespaces'],
    ['an alert that does not exist', { monitoring: { prometheusRule: { disabledAlerts: ['NoSuchAlert'] } } }, 'disabledAlerts'],
    ['a port out of range', { networkPolicy: { peerPort: 70000 } }, 'peerPort'],
  ])('refuses %s', async (_name, values, message) => {
    expect(await renderChartError(values)).toContain(message);
  });
});
