/**
 * Operator security on the real kube-apiserver (issue 9):
 *
 * - Least privilege: the chart's RBAC is installed for real and `kubectl auth can-i --as` the
 *   operator's ServiceAccount is asked, for every verb and resource its rules grant (each must be
 *   allowed) and for a list of powers an operator of a database must never hold (each must be
 *   refused), cluster-wide and with watchNamespaces (where other namespaces are refused too).
 * - Pod Security "restricted": the operator Deployment's pod and the pod of a DynamoCluster's
 *   StatefulSet (built by the operator's own pure builders) are created with a server-side dry
 *   run in a namespace that enforces the restricted profile; a privileged pod is the control
 *   that shows enforcement is on.
 */
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../k8s/controlPlane';
import { REPO_ROOT } from '../support/nodeProcess';
import { RELEASE_NAMESPACE, helmBinary, renderChart, type RenderedObject } from '../helm/helm';
import { desiredObjects } from '../../operator/src/core/resources';
import { normalizeSpec } from '../../operator/src/core/spec';

const KUBECTL_TIMEOUT_MS = 60_000;
const RBAC_KINDS = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

interface PolicyRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly verbs: readonly string[];
}

/** Powers the operator never needs; each would let a compromised operator take the cluster. */
const FORBIDDEN: readonly (readonly [verb: string, resource: string])[] = [
  ['create', 'pods/exec'],
  ['create', 'clusterroles.rbac.authorization.k8s.io'],
  ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
  ['escalate', 'roles.rbac.authorization.k8s.io'],
  ['bind', 'clusterroles.rbac.authorization.k8s.io'],
  ['impersonate', 'serviceaccounts'],
  ['delete', 'namespaces'],
  ['create', 'customresourcedefinitions.apiextensions.k8s.io'],
  ['delete', 'customresourcedefinitions.apiextensions.k8s.io'],
  ['update', 'nodes'],
  ['create', 'deployments.apps'],
  ['create', 'daemonsets.apps'],
  ['create', 'persistentvolumes'],
  ['create', 'serviceaccounts/token'],
  ['*', '*'],
];

let controlPlane: ControlPlane | undefined;

async function kubectl(args: readonly string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return controlPlane!.kubectl(args, { ...(input === undefined ? {} : { input }), timeoutMs: KUBECTL_TIMEOUT_MS });
}

async function mustSucceed(args: readonly string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.code}):\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

/**
 * `kubectl auth can-i` as the ServiceAccount: true (yes), false (no). `resource` is
 * "name.group[/subresource]"; `objectName` asks about one object by name.
 */
async function canI(serviceAccount: string, verb: string, resource: string, namespace: string | undefined, objectName?: string): Promise<boolean> {
  const [base, subresource] = resource.split('/') as [string, string | undefined];
  const what = [objectName === undefined ? base : `${base}/${objectName}`, ...(subresource === undefined ? [] : [`--subresource=${subresource}`])];
  const result = await kubectl(['auth', 'can-i', verb, ...what, `--as=system:serviceaccount:${RELEASE_NAMESPACE}:${serviceAccount}`, ...(namespace === undefined ? ['--all-namespaces'] : ['-n', namespace])]);
  const answer = result.stdout.trim();
  if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl auth can-i ${verb} ${resource}: ${result.stderr}${result.stdout}`);
  return answer === 'yes';
}

/** "resource.group" as kubectl names it ("pods" for the core group). */
function qualified(resource: string, group: string): string {
  return group === '' ? resource : `${resource.split('/')[0]}.${group}${resource.includes('/') ? `/${resource.split('/')[1]}` : ''}`;
}

/** Every (verb, resource) the rendered Roles and ClusterRoles grant, skipping rules tied to one name. */
function granted(objects: readonly RenderedObject[]): { verb: string; resource: string; namespace: string | undefined; objectName?: string }[] {
  const out: { verb: string; resource: string; namespace: string | undefined; objectName?: string }[] = [];
  for (const object of objects) {
    if (object.kind !== 'Role' && object.kind !== 'ClusterRole') continue;
    for (const rule of ((object as unknown as { rules?: PolicyRule[] }).rules ?? [])) {
      const namespace = object.kind === 'Role' ? object.metadata.namespace : undefined;
      // A rule limited to resourceNames (the leader-election Lease) is checked for each name.
      const objectNames: (string | undefined)[] = (rule.resourceNames ?? []).length > 0 ? [...rule.resourceNames!] : [undefined];
      for (const group of rule.apiGroups ?? ['']) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) for (const objectName of objectNames) out.push({ verb, resource: qualified(resource, group), namespace, ...(objectName === undefined ? {} : { objectName }) });
        }
      }
    }
  }
  return out;
}

function serviceAccountOf(objects: readonly RenderedObject[]): string {
  const account = objects.find((o) => o.kind === 'ServiceAccount');
  if (account === undefined) throw new Error('the chart rendered no ServiceAccount');
  return account.metadata.name;
}

async function installRbac(objects: readonly RenderedObject[]): Promise<void> {
  const rbac = objects.filter((o) => RBAC_KINDS.has(o.kind));
  await mustSucceed(['apply', '-f', '-'], rbac.map((o) => JSON.stringify(o)).join('\n'));
}

beforeAll(async () => {
  helmBinary();
  controlPlane = await startControlPlane();
  for (const namespace of [RELEASE_NAMESPACE, 'team-a', 'team-b']) await mustSucceed(['create', 'namespace', namespace]);
  // can-i resolves resource names through discovery, so the custom resources must be served.
  await mustSucceed(['apply', '--server-side', '-f', join(REPO_ROOT, 'crds'), '-f', join(REPO_ROOT, 'test', 'helm', 'fixtures', 'monitoring-crds.yaml')]);
  await mustSucceed(['wait', '--for=condition=Established', '--timeout=60s', 'crd/dynamoclusters.dynamokv.io', 'crd/servicemonitors.monitoring.coreos.com']);
  await mustSucceed(['create', 'namespace', 'restricted']);
  await mustSucceed(['label', 'namespace', 'restricted', 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
}, 5 * 60_000);

afterAll(async () => {
  await controlPlane?.stop();
});

describe('the operator ServiceAccount holds least privilege (kubectl auth can-i on the real apiserver)', () => {
  test('cluster-wide install: every granted permission is there, and none of the forbidden ones', async () => {
    const rendered = await renderChart({});
    await installRbac(rendered.objects);
    const account = serviceAccountOf(rendered.objects);
    const grants = granted(rendered.objects);
    expect(grants.length).toBeGreaterThan(10);
    const missing: string[] = [];
    for (const g of grants) if (!(await canI(account, g.verb, g.resource, g.namespace ?? 'team-a', g.objectName))) missing.push(`${g.verb} ${g.resource} ${g.objectName ?? ''}`);
    expect(missing).toEqual([]);
    const excess: string[] = [];
    for (const [verb, resource] of FORBIDDEN) if (await canI(account, verb, resource, 'team-a')) excess.push(`${verb} ${resource}`);
    expect(excess).toEqual([]);
    // The Lease it may update is its own, by name; it may not touch other Leases.
    expect(await canI(account, 'update', 'leases.coordination.k8s.io', RELEASE_NAMESPACE, 'some-other-lease')).toBe(false);
  }, 120_000);

  test('with watchNamespaces: allowed in the listed namespace, refused everywhere else', async () => {
    const rendered = await renderChart({ watchNamespaces: ['team-a'], serviceAccount: { name: 'dkv-namespaced' } });
    expect(rendered.objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([]);
    await installRbac(rendered.objects);
    const account = serviceAccountOf(rendered.objects);
    expect(account).toBe('dkv-namespaced');
    const grants = granted(rendered.objects);
    const wrong: string[] = [];
    for (const g of grants) {
      // Roles in team-a carry the cluster permissions; the Role in the release namespace, the Lease.
      if (!(await canI(account, g.verb, g.resource, g.namespace, g.objectName))) wrong.push(`missing in ${g.namespace}: ${g.verb} ${g.resource}`);
      if (await canI(account, g.verb, g.resource, 'team-b', g.objectName)) wrong.push(`granted in team-b: ${g.verb} ${g.resource}`);
    }
    if (await canI(account, 'list', 'dynamoclusters.dynamokv.io', undefined)) wrong.push('list dynamoclusters across all namespaces');
    expect(wrong).toEqual([]);
  }, 120_000);
});

describe('pods pass the Pod Security "restricted" profile (enforced by the real apiserver)', () => {
  const dryRunPod = (pod: unknown) => kubectl(['create', '--dry-run=server', '-n', 'restricted', '-f', '-'], JSON.stringify(pod));

  test('a pod with default security settings is refused there (the control)', async () => {
    const result = await dryRunPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'plain' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/violates PodSecurity "restricted/);
  });

  test('the operator Deployment pod is admitted', async () => {
    const rendered = await renderChart({});
    const deployment = rendered.objects.find((o) => o.kind === 'Deployment') as unknown as { spec: { template: { metadata?: object; spec: { serviceAccountName?: string } } } };
    const account = deployment.spec.template.spec.serviceAccountName;
    if (account !== undefined) await kubectl(['create', 'serviceaccount', account, '-n', 'restricted']);
    const result = await dryRunPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'operator' }, spec: deployment.spec.template.spec });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  });

  test('the dynamokv node pod of a DynamoCluster is admitted', async () => {
    // examples/minimal.yaml (as JSON through kubectl), through the operator's own spec
    // normalisation and builders.
    const raw = JSON.parse(await mustSucceed(['create', '--dry-run=client', '-o', 'json', '-f', join(REPO_ROOT, 'examples', 'minimal.yaml')])) as { spec: unknown };
    const spec = normalizeSpec('kv', raw.spec as never, { image: 'dynamokv/node:0.1.0' });
    if (!spec.ok) throw new Error(spec.problems.join('; '));
    const objects = desiredObjects({ cluster: { name: 'kv', namespace: 'restricted', uid: '00000000-0000-0000-0000-000000000001' }, spec: spec.spec, statefulSetReplicas: 3, serviceMonitorAvailable: false });
    const statefulSet = objects.find((o) => o.kind === 'StatefulSet') as unknown as { spec: { template: { spec: { volumes?: object[] } }; volumeClaimTemplates?: { metadata: { name: string } }[] } };
    // The StatefulSet controller adds one volume per claim template to each pod; so does this.
    const claimVolumes = (statefulSet.spec.volumeClaimTemplates ?? []).map((t) => ({ name: t.metadata.name, persistentVolumeClaim: { claimName: `${t.metadata.name}-kv-0` } }));
    const podSpec = { ...statefulSet.spec.template.spec, volumes: [...(statefulSet.spec.template.spec.volumes ?? []), ...claimVolumes] };
    const result = await dryRunPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'kv-0' }, spec: podSpec });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  });
});
