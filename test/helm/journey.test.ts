/**
 * The user journey of the README, on a real control plane (test/k8s: kube-apiserver, etcd,
 * kube-controller-manager) with the test kubelet running each pod's container as a local process
 * (the operator image as dist/operator/src/main.js, the node image as dist/node/src/main.js):
 *
 *   helm install   the operator chart (CRD from crds/, RBAC, Deployment)
 *   kubectl apply  examples/minimal.yaml (a 3-node DynamoCluster)
 *   write and read data through the client Service's endpoints
 *   kubectl scale  the DynamoCluster to 4 nodes; all data readable, also through the new node
 *   helm uninstall the operator; the CRD, the cluster and its data stay
 *
 * The operator authenticates as the chart's ServiceAccount (a token from the TokenRequest API in a
 * kubeconfig Secret mounted through the chart's extraVolumes), so the chart's RBAC is what it gets:
 * a missing permission fails this test. Its /metrics, scraped from the pod, must export every
 * metric the operator dashboard queries.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { DynamoClient } from '../../client/src/client';
import { startControlPlane, type ControlPlane } from '../k8s/controlPlane';
import { startKubelet, type Kubelet } from '../k8s/kubelet';
import { exportedNames, metricNames, substituteGrafanaVariables } from '../monitoring/promql';
import { NODE_MAIN, REPO_ROOT } from '../support/nodeProcess';
import { CHART_DIR, helm, helmBinary } from './helm';

const OPERATOR_MAIN = join(REPO_ROOT, 'dist', 'operator', 'src', 'main.js');
const RELEASE = 'dkv';
const OPERATOR_NAMESPACE = 'dynamokv-system';
const DEPLOYMENT = `${RELEASE}-dynamokv-operator`;
const NAMESPACE = 'db';
const CLUSTER = 'kv';
const KUBECONFIG_SECRET = 'operator-kubeconfig';
/** Where the Secret is mounted in the operator pod; the test kubelet maps it to a local directory. */
const KUBECONFIG_DIR = '/etc/dynamokv-kube';
const KEYS = 40;
const WAIT_POLL_MS = 1_000;
const CLUSTER_READY_TIMEOUT_MS = 180_000;

let controlPlane: ControlPlane | undefined;
let kubelet: Kubelet | undefined;
let client: DynamoClient | undefined;

/** Compiles when dist/ lacks the node or operator build, or is older than their sources. */
function ensureBuilt(): void {
  const built = Math.min(...[NODE_MAIN, OPERATOR_MAIN].map((file) => (existsSync(file) ? statSync(file).mtimeMs : 0)));
  const newest = Math.max(...['node/src', 'operator/src', 'client/src'].map((dir) => newestMs(join(REPO_ROOT, dir))));
  if (built > newest) return;
  try {
    execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO_ROOT, 'tsconfig.json')], { stdio: 'pipe' });
  } catch (error) {
    // tsc still emits JavaScript when some other file has a type error; only a missing build is fatal.
    if (!existsSync(NODE_MAIN) || !existsSync(OPERATOR_MAIN)) throw error;
  }
}

function newestMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

async function kubectl(args: readonly string[], input?: string): Promise<string> {
  if (controlPlane === undefined) throw new Error('no control plane');
  const result = await controlPlane.kubectl(args, { ...(input === undefined ? {} : { input }), timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.code}):\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

async function kubectlJson<T>(args: readonly string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

/** Polls until `check` answers a value (not undefined); the error names what was awaited. */
async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    await sleep(WAIT_POLL_MS);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === '' ? '' : ` (last error: ${lastError})`}\n${diagnostics()}`);
}

function diagnostics(): string {
  const tail = (text: string) => text.slice(-6_000);
  return [`--- kubelet ---\n${tail(kubelet?.logs() ?? '')}`, `--- control plane ---\n${tail(controlPlane?.logs() ?? '')}`].join('\n');
}

interface ClusterStatus {
  readonly readyReplicas?: number;
  readonly phase?: string;
  readonly operation?: unknown;
  readonly members?: Array<{ pod: string; state: string }>;
}

async function clusterStatus(): Promise<ClusterStatus> {
  return (await kubectlJson<{ status?: ClusterStatus }>(['get', 'dynamocluster', CLUSTER, '-n', NAMESPACE])).status ?? {};
}

/** Waits until the cluster has `replicas` Ready nodes, all normal ring members, nothing in flight. */
async function waitForCluster(replicas: number): Promise<void> {
  await waitFor(`${replicas} ready, normal members of ${NAMESPACE}/${CLUSTER}`, CLUSTER_READY_TIMEOUT_MS, async () => {
    const status = await clusterStatus();
    const normal = (status.members ?? []).filter((member) => member.state === 'normal').length;
    const settled = status.readyReplicas === replicas && normal === replicas && (status.operation === undefined || status.operation === null);
    return settled ? true : undefined;
  });
}

/** Client URLs of the Ready endpoints of the cluster's client Service. */
async function clientEndpoints(): Promise<string[]> {
  const slices = await kubectlJson<{ items: Array<{ endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }>; ports?: Array<{ name?: string; port?: number }> }> }>([
    'get', 'endpointslices', '-n', NAMESPACE, '-l', `kubernetes.io/service-name=${CLUSTER}`,
  ]);
  const urls: string[] = [];
  for (const slice of slices.items) {
    const port = slice.ports?.find((p) => p.name === 'client')?.port ?? 8080;
    for (const endpoint of slice.endpoints ?? []) {
      if (endpoint.conditions?.ready === false) continue;
      for (const address of endpoint.addresses) urls.push(`http://${address}:${port}`);
    }
  }
  return urls.sort();
}

async function secretValue(namespace: string, name: string, key: string): Promise<string> {
  const secret = await kubectlJson<{ data: Record<string, string> }>(['get', 'secret', name, '-n', namespace]);
  const value = secret.data[key];
  if (value === undefined) throw new Error(`secret ${namespace}/${name} has no key ${key}`);
  return Buffer.from(value, 'base64').toString('utf8');
}

/** A kubeconfig that authenticates as the chart's ServiceAccount with a TokenRequest token. */
async function serviceAccountKubeconfig(serviceAccount: string): Promise<string> {
  if (controlPlane === undefined) throw new Error('no control plane');
  const token = (await kubectl(['create', 'token', serviceAccount, '-n', OPERATOR_NAMESPACE, '--duration=2h'])).trim();
  const ca = (await kubectl(['config', 'view', '--raw', '-o', 'jsonpath={.clusters[0].cluster.certificate-authority-data}'])).trim();
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: controlPlane.server, 'certificate-authority-data': ca } }],
    users: [{ name: serviceAccount, user: { token } }],
    contexts: [{ name: 'operator', context: { cluster: 'test', user: serviceAccount } }],
    'current-context': 'operator',
  });
}

beforeAll(async () => {
  helmBinary();
  ensureBuilt();
  controlPlane = await startControlPlane();
  kubelet = await startKubelet({
    kubeconfigPath: controlPlane.kubeconfigPath,
    images: {
      'dynamokv/operator': () => ({ command: process.execPath, args: [OPERATOR_MAIN] }),
      'dynamokv/node': (container) => ({ command: process.execPath, args: [NODE_MAIN, ...(container.args ?? [])], env: { DYNAMOKV_LOG_LEVEL: 'warn' } }),
    },
  });
}, 5 * 60_000);

afterAll(async () => {
  await client?.close();
  await kubelet?.stop();
  await controlPlane?.stop();
});

const writtenKeys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);

test('helm install: the chart installs the CRD and an operator that becomes Ready under its own RBAC', async () => {
  if (controlPlane === undefined) throw new Error('no control plane');
  const install = await helm([
    'install', RELEASE, CHART_DIR, '--namespace', OPERATOR_NAMESPACE, '--create-namespace', '--kubeconfig', controlPlane.kubeconfigPath,
    '--set', 'logLevel=info',
    '--set-json', `extraEnv=${JSON.stringify([
      { name: 'KUBECONFIG', value: `${KUBECONFIG_DIR}/kubeconfig` },
      // Pods of the test kubelet share the machine's network: listen on the pod's own address.
      { name: 'METRICS_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ])}`,
    '--set-json', `extraVolumes=${JSON.stringify([{ name: 'kubeconfig', secret: { secretName: KUBECONFIG_SECRET } }])}`,
    '--set-json', `extraVolumeMounts=${JSON.stringify([{ name: 'kubeconfig', mountPath: KUBECONFIG_DIR, readOnly: true }])}`,
  ]);
  expect(install.stderr).toBe('');
  expect(install.code).toBe(0);
  expect(install.stdout).toContain('STATUS: deployed');
  // NOTES.txt tells the user what was installed and what to do next.
  expect(install.stdout).toContain(`The dynamokv operator is installed as ${DEPLOYMENT} in namespace ${OPERATOR_NAMESPACE}.`);
  expect(install.stdout).toContain('kubectl scale dynamocluster/kv');
  // The ServiceAccount exists now; its token goes where the pod mounts it (the pod waits for it).
  const kubeconfig = await serviceAccountKubeconfig(DEPLOYMENT);
  await kubectl(['create', 'secret', 'generic', KUBECONFIG_SECRET, '-n', OPERATOR_NAMESPACE, `--from-literal=kubeconfig=${kubeconfig}`]);
  await kubectl(['rollout', 'status', `deployment/${DEPLOYMENT}`, '-n', OPERATOR_NAMESPACE, '--timeout=120s']);
  expect(await kubectl(['get', 'crd', 'dynamoclusters.dynamokv.io', '-o', 'name'])).toContain('dynamoclusters.dynamokv.io');
  // The operator holds the Lease the chart's Role names.
  await waitFor('the operator to hold its Lease', 60_000, async () => {
    const lease = await kubectlJson<{ spec?: { holderIdentity?: string } }>(['get', 'lease', 'dynamokv-operator', '-n', OPERATOR_NAMESPACE]);
    return lease.spec?.holderIdentity?.startsWith(DEPLOYMENT) === true ? true : undefined;
  });
}, 240_000);

test('kubectl apply examples/minimal.yaml: three nodes come up, and data written through the client Service reads back', async () => {
  await kubectl(['create', 'namespace', NAMESPACE]);
  await kubectl(['apply', '-n', NAMESPACE, '-f', join(REPO_ROOT, 'examples', 'minimal.yaml')]);
  await waitForCluster(3);
  const endpoints = await clientEndpoints();
  expect(endpoints).toHaveLength(3);
  const token = await secretValue(NAMESPACE, `${CLUSTER}-credentials`, 'auth-token');
  client = new DynamoClient({ endpoints, token });
  for (const key of writtenKeys) await client.put('journey', key, `value of ${key}`);
  for (const key of writtenKeys) {
    const result = await client.get('journey', key);
    expect(result.values.map((sibling) => sibling.value.toString('utf8'))).toEqual([`value of ${key}`]);
  }
}, 300_000);

test('the running operator\'s /metrics exports every metric the operator dashboard queries', async () => {
  const pods = await kubectlJson<{ items: Array<{ status?: { podIP?: string } }> }>(['get', 'pods', '-n', OPERATOR_NAMESPACE, '-l', `app.kubernetes.io/instance=${RELEASE}`]);
  const podIp = pods.items[0]?.status?.podIP;
  expect(podIp).toBeDefined();
  const exposition = await (await fetch(`http://${podIp}:8080/metrics`)).text();
  const exported = exportedNames(exposition);
  const dashboard = JSON.parse(readFileSync(join(CHART_DIR, 'files', 'dashboards', 'dynamokv-operator.json'), 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
  const queried = [...new Set(dashboard.panels.flatMap((panel) => (panel.targets ?? []).flatMap((target) => metricNames(substituteGrafanaVariables(target.expr)))))];
  expect(queried.length).toBeGreaterThan(5);
  expect(queried.filter((name) => !exported.has(name))).toEqual([]);
  // And it reports this cluster, labelled with its namespace and name.
  expect(exposition).toMatch(new RegExp(`dynamokv_operator_cluster_replicas\\{[^}]*namespace="${NAMESPACE}"[^}]*cluster="${CLUSTER}"[^}]*kind="desired"[^}]*\\} 3`));
  expect(exposition).toMatch(/^dynamokv_operator_is_leader 1$/m);
}, 60_000);

test('kubectl scale to 4: the new node joins, and every key reads back, also through the new node', async () => {
  await kubectl(['scale', `dynamocluster/${CLUSTER}`, '-n', NAMESPACE, '--replicas=4']);
  await waitForCluster(4);
  const endpoints = await clientEndpoints();
  expect(endpoints).toHaveLength(4);
  const token = await secretValue(NAMESPACE, `${CLUSTER}-credentials`, 'auth-token');
  const newPod = await kubectlJson<{ status?: { podIP?: string } }>(['get', 'pod', `${CLUSTER}-3`, '-n', NAMESPACE]);
  const newNode = new DynamoClient({ endpoints: [`http://${newPod.status?.podIP ?? 'missing'}:8080`], token });
  try {
    const ring = await newNode.ring();
    expect(ring.members.filter((member) => member.state === 'normal').map((member) => member.id).sort()).toEqual(['kv-0', 'kv-1', 'kv-2', 'kv-3']);
    for (const key of writtenKeys) {
      const result = await newNode.get('journey', key);
      expect(result.values.map((sibling) => sibling.value.toString('utf8'))).toEqual([`value of ${key}`]);
    }
  } finally {
    await newNode.close();
  }
  // Everything the operator did ran under the chart's RBAC: nothing it tried was forbidden.
  const operatorPods = await kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['get', 'pods', '-n', OPERATOR_NAMESPACE, '-l', `app.kubernetes.io/instance=${RELEASE}`]);
  const operatorOutput = operatorPods.items.map((pod) => kubelet?.output(OPERATOR_NAMESPACE, pod.metadata.name) ?? '').join('\n');
  expect(operatorOutput.split('\n').filter((line) => /forbidden/i.test(line))).toEqual([]);
}, 300_000);

test('helm uninstall: the operator and its RBAC go; the CRD, the cluster and its data stay', async () => {
  if (controlPlane === undefined || client === undefined) throw new Error('no cluster');
  const uninstall = await helm(['uninstall', RELEASE, '--namespace', OPERATOR_NAMESPACE, '--kubeconfig', controlPlane.kubeconfigPath, '--wait', '--timeout', '120s']);
  expect(uninstall.code).toBe(0);
  expect(uninstall.stdout).toContain(`release "${RELEASE}" uninstalled`);
  expect((await kubectl(['get', 'deployments,serviceaccounts,roles,rolebindings', '-n', OPERATOR_NAMESPACE, '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name'])).trim()).toBe('');
  expect((await kubectl(['get', 'clusterroles,clusterrolebindings', '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name'])).trim()).toBe('');
  // Garbage collection deletes the ReplicaSet and its pod; the kubelet stops the process. (Whether
  // the pod object is already finalized is the kubelet's business, not the chart's.)
  await waitFor('the operator process to stop', 60_000, async () => {
    const pods = await kubectlJson<{ items: Array<{ metadata: { name: string; deletionTimestamp?: string } }> }>(['get', 'pods', '-n', OPERATOR_NAMESPACE]);
    const stopped = pods.items.every((pod) => pod.metadata.deletionTimestamp !== undefined && kubelet?.podProcess(OPERATOR_NAMESPACE, pod.metadata.name) === undefined);
    return stopped ? true : undefined;
  });
  expect(await kubectl(['get', 'crd', 'dynamoclusters.dynamokv.io', '-o', 'name'])).toContain('dynamoclusters.dynamokv.io');
  expect((await kubectl(['get', 'dynamocluster', CLUSTER, '-n', NAMESPACE, '-o', 'name'])).trim()).toBe(`dynamocluster.dynamokv.io/${CLUSTER}`);
  // The data plane does not need the operator: every key still reads back.
  for (const key of writtenKeys) {
    const result = await client.get('journey', key);
    expect(result.values.map((sibling) => sibling.value.toString('utf8'))).toEqual([`value of ${key}`]);
  }
}, 240_000);
