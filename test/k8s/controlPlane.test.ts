/**
 * The real control plane and the test kubelet together, driving a StatefulSet the way the operator
 * will: a real kube-apiserver + etcd + kube-controller-manager (StatefulSet controller, PV binder,
 * EndpointSlice controller, garbage collector) and the TypeScript kubelet running each pod as a
 * local process on its own 127.x address.
 *
 * It proves, in order, on one StatefulSet of 3 replicas (volumeClaimTemplates, headless Service,
 * readiness probe) whose image maps to fixtures/readyServer.cjs:
 * 1. the pods become Ready with distinct IPs, each served by its own local process on the same port,
 *    owned by the StatefulSet, with env from the downward API and $(VAR) expansion;
 * 2. their PVCs exist and are Bound (through the real binder), and each pod wrote into its own PVC
 *    directory, reached through the mount path rewritten in its args;
 * 3. the headless Service's EndpointSlices list exactly the pod IPs;
 * 4. `kubectl scale --replicas=1` stops web-2 then web-1 (SIGTERM seen by each, highest ordinal
 *    first) and leaves web-0 running;
 * 5. web-0 deleted and recreated by the controller finds its data directory again;
 * 6. the StatefulSet deleted, the garbage collector deletes its pods and the kubelet stops them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { AppsV1Api, DiscoveryV1Api, V1Pod } from '@kubernetes/client-node';

import { REPO_ROOT } from '../support/nodeProcess';
import { startControlPlane, type ControlPlane } from './controlPlane';
import { connect, type KubeApis } from './kubeApi';
import { startKubelet, type Kubelet } from './kubelet';
import { diagnostics, waitFor as waitUntil } from './testing';

const FIXTURE = join(REPO_ROOT, 'test', 'k8s', 'fixtures', 'readyServer.cjs');
const NAMESPACE = 'kubelet-test';
const PORT = 8080;

let controlPlane: ControlPlane | undefined;
let kubelet: Kubelet | undefined;
let apis: KubeApis;
let apps: AppsV1Api;
let discovery: DiscoveryV1Api;

const podNames = ['web-0', 'web-1', 'web-2'].map((name) => [NAMESPACE, name] as const);
const waitFor = <T>(what: string, check: () => Promise<T | undefined>) => waitUntil(what, check, { diagnostics: () => diagnostics(controlPlane, kubelet, podNames) });

async function pods(): Promise<V1Pod[]> {
  const list = await apis.core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'app=web' });
  return list.items.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

const isReady = (pod: V1Pod) => pod.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') === true;

async function info(ip: string): Promise<{ podName: string; address: string; identity: string; boots: number; pid: number; env: { ADDRESS?: string } }> {
  const response = await fetch(`http://${ip}:${PORT}/info`, { signal: AbortSignal.timeout(5_000) });
  return (await response.json()) as { podName: string; address: string; identity: string; boots: number; pid: number; env: { ADDRESS?: string } };
}

/** The local directory behind the pod's data PVC: the hostPath of the PV bound to data-<pod>. */
async function dataDir(pod: string): Promise<string> {
  const claim = await apis.core.readNamespacedPersistentVolumeClaim({ name: `data-${pod}`, namespace: NAMESPACE });
  const volume = await apis.core.readPersistentVolume({ name: claim.spec?.volumeName ?? '' });
  return volume.spec?.hostPath?.path ?? '';
}

const manifests = {
  apiVersion: 'v1',
  kind: 'List',
  items: [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NAMESPACE }, spec: { clusterIP: 'None', selector: { app: 'web' }, ports: [{ name: 'http', port: PORT }] } },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'web', namespace: NAMESPACE },
      spec: {
        serviceName: 'web',
        replicas: 3,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            terminationGracePeriodSeconds: 10,
            containers: [
              {
                name: 'server',
                image: 'dynamokv/fixture:1.0',
                args: ['--data-dir', '/var/lib/fixture'],
                env: [
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                  { name: 'PORT', value: String(PORT) },
                  { name: 'ADDRESS', value: '$(POD_IP):$(PORT)' },
                ],
                ports: [{ name: 'http', containerPort: PORT }],
                readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1, failureThreshold: 3 },
                volumeMounts: [{ name: 'data', mountPath: '/var/lib/fixture' }],
              },
            ],
          },
        },
        volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Mi' } } } }],
      },
    },
  ],
};

beforeAll(async () => {
  controlPlane = await startControlPlane();
  kubelet = await startKubelet({
    kubeconfigPath: controlPlane.kubeconfigPath,
    images: { 'dynamokv/fixture': (container) => ({ command: process.execPath, args: [FIXTURE, ...(container.args ?? [])] }) },
  });
  apis = await connect(controlPlane.kubeconfigPath);
  apps = apis.config.makeApiClient(apis.k8s.AppsV1Api);
  discovery = apis.config.makeApiClient(apis.k8s.DiscoveryV1Api);
  await apis.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  // The namespace's default service account comes from kube-controller-manager; pods need it.
  await waitFor('the default service account', async () => (await apis.core.readNamespacedServiceAccount({ name: 'default', namespace: NAMESPACE })) ?? undefined);
}, 240_000);

afterAll(async () => {
  await kubelet?.stop();
  await controlPlane?.stop();
}, 60_000);

test('a StatefulSet runs, scales, recreates and is garbage-collected on the real control plane', async () => {
  const applied = await controlPlane?.kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifests) });
  expect(applied).toMatchObject({ code: 0 });

  // 1. Three Ready pods, distinct IPs, each its own process on the same port.
  const ready = await waitFor('3 Ready pods', async () => {
    const current = await pods();
    return current.length === 3 && current.every(isReady) ? current : undefined;
  });
  const ips = ready.map((pod) => pod.status?.podIP ?? '');
  expect(new Set(ips).size).toBe(3);
  for (const [index, pod] of ready.entries()) {
    const name = `web-${index}`;
    expect(pod.metadata?.name).toBe(name);
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'StatefulSet', name: 'web', controller: true });
    expect(pod.spec?.nodeName).toBe('dynamokv-test-node');
    expect(ips[index]).toMatch(/^127\.0\.\d+\.\d+$/);
    const served = await info(ips[index] ?? '');
    expect(served).toMatchObject({ podName: name, address: `${ips[index]}:${PORT}`, boots: 1, env: { ADDRESS: `${ips[index]}:${PORT}` } });
    expect(kubelet?.podProcess(NAMESPACE, name)).toEqual({ pid: served.pid, ip: ips[index] });
  }

  // 2. PVCs Bound by the real binder; each pod wrote its identity into its own PVC directory.
  for (const index of [0, 1, 2]) {
    const claim = await apis.core.readNamespacedPersistentVolumeClaim({ name: `data-web-${index}`, namespace: NAMESPACE });
    expect(claim.status?.phase).toBe('Bound');
    const dir = await dataDir(`web-${index}`);
    expect(readFileSync(join(dir, 'identity'), 'utf8')).toMatch(new RegExp(`^web-${index} `));
  }
  const identity0 = (await info(ips[0] ?? '')).identity;

  // 3. The headless Service's EndpointSlices list the pod IPs.
  await waitFor('EndpointSlices listing the 3 pod IPs', async () => {
    const slices = await discovery.listNamespacedEndpointSlice({ namespace: NAMESPACE, labelSelector: 'kubernetes.io/service-name=web' });
    const listed = slices.items.flatMap((slice) => (slice.endpoints ?? []).filter((endpoint) => endpoint.conditions?.ready === true).flatMap((endpoint) => endpoint.addresses));
    return listed.length === 3 && [...listed].sort().join() === [...ips].sort().join() ? listed : undefined;
  });

  // 4. Scale to 1 with kubectl: web-2, then web-1, get SIGTERM and go; web-0 keeps running.
  const pid0 = kubelet?.podProcess(NAMESPACE, 'web-0')?.pid;
  const scaled = await controlPlane?.kubectl(['scale', 'statefulset/web', '--replicas=1', '-n', NAMESPACE]);
  expect(scaled?.code).toBe(0);
  await waitFor('only web-0 left', async () => {
    const names = (await pods()).map((pod) => pod.metadata?.name);
    return names.join() === 'web-0' ? names : undefined;
  });
  const sigterm1 = Number(readFileSync(join(await dataDir('web-1'), 'sigterm-web-1'), 'utf8'));
  const sigterm2 = Number(readFileSync(join(await dataDir('web-2'), 'sigterm-web-2'), 'utf8'));
  expect(sigterm2).toBeLessThan(sigterm1);
  expect(kubelet?.podProcess(NAMESPACE, 'web-1')).toBeUndefined();
  expect(kubelet?.podProcess(NAMESPACE, 'web-0')?.pid).toBe(pid0);

  // 5. web-0 deleted: the controller recreates it (new uid), and it finds its data directory again.
  const oldUid = ready[0]?.metadata?.uid;
  await apis.core.deleteNamespacedPod({ name: 'web-0', namespace: NAMESPACE });
  const recreated = await waitFor('web-0 recreated and Ready', async () => {
    const pod = (await pods()).find((candidate) => candidate.metadata?.name === 'web-0');
    return pod !== undefined && pod.metadata?.uid !== oldUid && isReady(pod) ? pod : undefined;
  });
  const again = await info(recreated.status?.podIP ?? '');
  expect(again).toMatchObject({ podName: 'web-0', identity: identity0, boots: 2 });
  expect(again.pid).not.toBe(pid0);
  expect(readFileSync(join(await dataDir('web-0'), 'sigterm-web-0'), 'utf8')).toMatch(/^\d+/);

  // 6. The StatefulSet deleted: the garbage collector deletes its pod, the kubelet stops it.
  const lastPid = again.pid;
  await apps.deleteNamespacedStatefulSet({ name: 'web', namespace: NAMESPACE });
  await waitFor("the StatefulSet's pods garbage-collected", async () => ((await pods()).length === 0 ? true : undefined));
  expect(kubelet?.podProcess(NAMESPACE, 'web-0')).toBeUndefined();
  expect(() => process.kill(lastPid, 0)).toThrow();
}, 300_000);
