/**
 * Everything the chart renders, with each value set of valueSets.ts, and every file in examples/,
 * is accepted by a real kube-apiserver (test/k8s/controlPlane.ts: built from k8s.io/kubernetes)
 * through `kubectl apply --dry-run=server`: admission, defaulting, schema and strict field
 * validation all run, nothing is stored. The DynamoCluster CRD comes from the chart's crds/, the
 * monitoring.coreos.com kinds from stand-in CRDs (test/helm/fixtures/monitoring-crds.yaml). Three
 * deliberately broken objects show the dry run really validates.
 */
import { join } from 'node:path';

import { startControlPlane, type ControlPlane } from '../k8s/controlPlane';
import { REPO_ROOT } from '../support/nodeProcess';
import { CHART_DIR, RELEASE_NAMESPACE, helmBinary, renderChart } from './helm';
import { VALUE_SETS } from './valueSets';

const NAMESPACES = [RELEASE_NAMESPACE, 'team-a', 'team-b', 'db'];
const EXAMPLES = ['minimal.yaml', 'production.yaml', 'hpa.yaml'].map((file) => join(REPO_ROOT, 'examples', file));
const KUBECTL_TIMEOUT_MS = 60_000;

let controlPlane: ControlPlane | undefined;

async function kubectl(args: readonly string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  if (controlPlane === undefined) throw new Error('no control plane');
  return controlPlane.kubectl(args, { ...(input === undefined ? {} : { input }), timeoutMs: KUBECTL_TIMEOUT_MS });
}

async function mustSucceed(args: readonly string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.code}):\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

beforeAll(async () => {
  helmBinary();
  controlPlane = await startControlPlane();
  await mustSucceed(['apply', '--server-side', '-f', join(CHART_DIR, 'crds'), '-f', join(REPO_ROOT, 'test', 'helm', 'fixtures', 'monitoring-crds.yaml')]);
  await mustSucceed(['wait', '--for=condition=Established', '--timeout=60s', 'crd/dynamoclusters.dynamokv.io', 'crd/servicemonitors.monitoring.coreos.com', 'crd/podmonitors.monitoring.coreos.com', 'crd/prometheusrules.monitoring.coreos.com']);
  for (const namespace of NAMESPACES) await mustSucceed(['create', 'namespace', namespace]);
}, 5 * 60_000);

afterAll(async () => {
  await controlPlane?.stop();
});

describe('kubectl apply --dry-run=server', () => {
  test.each(Object.entries(VALUE_SETS))('accepts every object the chart renders with the %s values', async (_name, values) => {
    const rendered = await renderChart(values);
    const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], rendered.yaml);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // One "<kind>/<name> created (server dry run)" line per rendered object.
    const accepted = result.stdout.split('\n').filter((line) => line.endsWith('(server dry run)'));
    expect(accepted).toHaveLength(rendered.objects.length);
  });

  test('accepts every example in examples/', async () => {
    const result = await kubectl(['apply', '--dry-run=server', '-n', 'db', ...EXAMPLES.flatMap((file) => ['-f', file])]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('dynamocluster.dynamokv.io/kv created (server dry run)');
    expect(result.stdout).toContain('dynamocluster.dynamokv.io/orders created (server dry run)');
    expect(result.stdout).toContain('horizontalpodautoscaler.autoscaling/orders created (server dry run)');
  });
});

describe('the dry run rejects what is wrong', () => {
  test('a misspelt field in the operator Deployment (strict field validation)', async () => {
    const rendered = await renderChart({});
    const broken = rendered.yaml.replace('readOnlyRootFilesystem: true', 'readOnlyRootFileSystem: true');
    expect(broken).not.toBe(rendered.yaml);
    const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], broken);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('readOnlyRootFileSystem');
  });

  test('a DynamoCluster whose read quorum exceeds its replication factor (the CRD schema)', async () => {
    const cluster = { apiVersion: 'dynamokv.io/v1alpha1', kind: 'DynamoCluster', metadata: { name: 'bad', namespace: 'db' }, spec: { replicas: 3, replicationFactor: 3, readQuorum: 4 } };
    const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], JSON.stringify(cluster));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('readQuorum');
  });

  test('a PrometheusRule rule without an expression (the monitoring stand-in CRDs have teeth)', async () => {
    const rule = { apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { name: 'bad', namespace: 'db' }, spec: { groups: [{ name: 'g', rules: [{ alert: 'A' }] }] } };
    const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], JSON.stringify(rule));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('expr');
  });
});
