/**
 * The test kubelet's pod features on the real control plane, one bare pod each (the StatefulSet
 * journey is in controlPlane.test.ts): restarts with back-off keep the pod's emptyDir; env and
 * files from ConfigMaps, Secrets and the downward API reach the process at rewritten paths, in a
 * clean environment; a failing liveness probe restarts the container; a process that ignores
 * SIGTERM is killed after the grace period; a released PV the kubelet provisioned is deleted with
 * its directory; an image without a local command leaves the pod waiting with ErrImagePull.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { V1Container, V1Pod } from '@kubernetes/client-node';

import { REPO_ROOT } from '../support/nodeProcess';
import { startControlPlane, type ControlPlane } from './controlPlane';
import { connect, isNotFound, type KubeApis } from './kubeApi';
import { startKubelet, type Kubelet } from './kubelet';
import { diagnostics, waitFor as waitUntil } from './testing';

const FIXTURE = join(REPO_ROOT, 'test', 'k8s', 'fixtures', 'readyServer.cjs');
const NAMESPACE = 'features';
const PORT = 8080;

let controlPlane: ControlPlane | undefined;
let kubelet: Kubelet | undefined;
let apis: KubeApis;

const podNames = ['crashy', 'configured', 'lively', 'stubborn', 'claimer', 'imageless'].map((name) => [NAMESPACE, name] as const);
const waitFor = <T>(what: string, check: () => Promise<T | undefined>) => waitUntil(what, check, { diagnostics: () => diagnostics(controlPlane, kubelet, podNames) });

interface Info {
  podName: string;
  dataDir: string;
  boots: number;
  pid: number;
  argv: string[];
  env: Record<string, string>;
}

async function info(ip: string): Promise<Info> {
  const response = await fetch(`http://${ip}:${PORT}/info`, { signal: AbortSignal.timeout(5_000) });
  return (await response.json()) as Info;
}

const readPod = (name: string) => apis.core.readNamespacedPod({ name, namespace: NAMESPACE });
const isReady = (pod: V1Pod) => pod.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') === true;

/**
 * A fixture container: POD_NAME, POD_IP and PORT set, data in /data (an emptyDir unless `volumes`
 * says otherwise), and a readiness probe, so Ready means the process is listening (without a probe a
 * pod is Ready as soon as its process runs, before the fixture has even installed its handlers).
 */
function fixturePod(name: string, container: Partial<V1Container>, spec: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      volumes: [{ name: 'data', emptyDir: {} }],
      ...spec,
      containers: [
        {
          name: 'main',
          image: 'dynamokv/fixture:test',
          args: ['--data-dir', '/data'],
          readinessProbe: { httpGet: { path: '/ready', port: PORT }, periodSeconds: 1 },
          ...container,
          env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }, { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }, { name: 'PORT', value: String(PORT) }, ...(container.env ?? [])],
          volumeMounts: [{ name: 'data', mountPath: '/data' }, ...(container.volumeMounts ?? [])],
        },
      ],
    },
  };
}

async function readyPod(name: string): Promise<V1Pod> {
  return waitFor(`${name} Ready`, async () => {
    const pod = await readPod(name);
    return isReady(pod) ? pod : undefined;
  });
}

async function gone(name: string): Promise<void> {
  await waitFor(`${name} gone`, async () => {
    try {
      await readPod(name);
      return undefined;
    } catch (error) {
      return isNotFound(error) ? true : undefined;
    }
  });
}

beforeAll(async () => {
  controlPlane = await startControlPlane();
  kubelet = await startKubelet({
    kubeconfigPath: controlPlane.kubeconfigPath,
    images: { 'dynamokv/fixture': (container) => ({ command: process.execPath, args: [FIXTURE, ...(container.args ?? [])] }) },
  });
  apis = await connect(controlPlane.kubeconfigPath);
  await apis.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  await waitFor('the default service account', async () => apis.core.readNamespacedServiceAccount({ name: 'default', namespace: NAMESPACE }));
  await apis.core.createNamespacedConfigMap({ namespace: NAMESPACE, body: { metadata: { name: 'cfg' }, data: { greeting: 'hello', 'app.conf': 'x=1\n' } } });
  await apis.core.createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name: 'sec' }, data: { token: Buffer.from('s3cret').toString('base64') } } });
}, 240_000);

afterAll(async () => {
  await kubelet?.stop();
  await controlPlane?.stop();
}, 60_000);

test('a crashing container is restarted with back-off and keeps its emptyDir', async () => {
  await apis.core.createNamespacedPod({ namespace: NAMESPACE, body: fixturePod('crashy', { args: ['--data-dir', '/data', '--exit-after-ms', '300', '--exit-code', '3'] }) });
  const status = await waitFor('two restarts', async () => {
    const container = (await readPod('crashy')).status?.containerStatuses?.[0];
    return (container?.restartCount ?? 0) >= 2 ? container : undefined;
  });
  expect(status.lastState?.terminated?.exitCode).toBe(3);
  // The third run may not have printed its line yet when the status says it started.
  const dirs = await waitFor('three boots in the output', async () => {
    const boots = [...kubelet!.output(NAMESPACE, 'crashy').matchAll(/data in (\S+), boot (\d+)/g)];
    return boots.length >= 3 ? boots : undefined;
  });
  expect(new Set(dirs.map((match) => match[1])).size).toBe(1);
  expect(dirs.map((match) => Number(match[2])).slice(0, 3)).toEqual([1, 2, 3]);
  await apis.core.deleteNamespacedPod({ name: 'crashy', namespace: NAMESPACE });
  await gone('crashy');
}, 120_000);

test('env and files from ConfigMaps, Secrets and the downward API reach the process at rewritten paths', async () => {
  const pod = fixturePod(
    'configured',
    {
      args: ['--data-dir', '/data', '--config', '/etc/cfg/app.conf', '--secret-dir=/etc/sec', '--labels', '/etc/podinfo/labels'],
      env: [
        { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'greeting' } } },
        { name: 'CONF_FILE', value: '/etc/cfg/app.conf' },
      ],
      envFrom: [{ secretRef: { name: 'sec' }, prefix: 'S_' }],
      volumeMounts: [
        { name: 'cfg', mountPath: '/etc/cfg' },
        { name: 'sec', mountPath: '/etc/sec' },
        { name: 'podinfo', mountPath: '/etc/podinfo' },
      ],
    },
    {
      volumes: [
        { name: 'data', emptyDir: {} },
        { name: 'cfg', configMap: { name: 'cfg' } },
        { name: 'sec', secret: { secretName: 'sec', items: [{ key: 'token', path: 'tok' }] } },
        { name: 'podinfo', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
      ],
    },
  );
  pod.metadata = { ...pod.metadata, labels: { tier: 'test' } };
  await apis.core.createNamespacedPod({ namespace: NAMESPACE, body: pod });
  const ready = await readyPod('configured');
  const served = await info(ready.status?.podIP ?? '');
  expect(served.env).toMatchObject({ GREETING: 'hello', S_token: 's3cret', HOSTNAME: 'configured', KUBERNETES_SERVICE_HOST: '127.0.0.1' });
  // The environment is the pod's, not the kubelet's: jest's NODE_OPTIONS does not leak in.
  expect(served.env.NODE_OPTIONS).toBeUndefined();
  const [, , , configPath, secretArg, , labelsPath] = served.argv;
  expect(configPath).not.toBe('/etc/cfg/app.conf');
  expect(readFileSync(configPath ?? '', 'utf8')).toBe('x=1\n');
  expect(served.env.CONF_FILE).toBe(configPath);
  expect(secretArg).toMatch(/^--secret-dir=\//);
  expect(readFileSync(join((secretArg ?? '').slice('--secret-dir='.length), 'tok'), 'utf8')).toBe('s3cret');
  expect(readFileSync(labelsPath ?? '', 'utf8')).toBe('tier="test"');
  await apis.core.deleteNamespacedPod({ name: 'configured', namespace: NAMESPACE });
  await gone('configured');
}, 120_000);

test('a failing liveness probe restarts the container', async () => {
  const probe = { httpGet: { path: '/healthz', port: PORT }, periodSeconds: 1, failureThreshold: 2 };
  await apis.core.createNamespacedPod({ namespace: NAMESPACE, body: fixturePod('lively', { livenessProbe: probe }) });
  const first = await info((await readyPod('lively')).status?.podIP ?? '');
  writeFileSync(join(first.dataDir, 'unhealthy'), 'yes');
  const restarted = await waitFor('a restart and Ready again', async () => {
    const pod = await readPod('lively');
    return (pod.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && isReady(pod) ? pod : undefined;
  });
  const second = await info(restarted.status?.podIP ?? '');
  expect(second.pid).not.toBe(first.pid);
  expect(second.boots).toBe(2);
  await apis.core.deleteNamespacedPod({ name: 'lively', namespace: NAMESPACE });
  await gone('lively');
}, 120_000);

test('a process that ignores SIGTERM is killed after the grace period and the pod is finalized', async () => {
  await apis.core.createNamespacedPod({ namespace: NAMESPACE, body: fixturePod('stubborn', { args: ['--data-dir', '/data', '--ignore-sigterm'] }, { terminationGracePeriodSeconds: 2 }) });
  await readyPod('stubborn');
  const pid = kubelet!.podProcess(NAMESPACE, 'stubborn')?.pid ?? -1;
  expect(pid).toBeGreaterThan(0);
  await apis.core.deleteNamespacedPod({ name: 'stubborn', namespace: NAMESPACE });
  await gone('stubborn');
  expect(kubelet!.output(NAMESPACE, 'stubborn')).toContain('got SIGTERM and ignores it');
  expect(() => process.kill(pid, 0)).toThrow();
}, 120_000);

test('a released PV the kubelet provisioned is deleted with its directory', async () => {
  await apis.core.createNamespacedPersistentVolumeClaim({ namespace: NAMESPACE, body: { metadata: { name: 'claim' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Mi' } } } } });
  await apis.core.createNamespacedPod({ namespace: NAMESPACE, body: fixturePod('claimer', {}, { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'claim' } }] }) });
  const served = await info((await readyPod('claimer')).status?.podIP ?? '');
  const claim = await apis.core.readNamespacedPersistentVolumeClaim({ name: 'claim', namespace: NAMESPACE });
  const volumeName = claim.spec?.volumeName ?? '';
  expect((await apis.core.readPersistentVolume({ name: volumeName })).spec?.hostPath?.path).toBe(served.dataDir);
  expect(existsSync(join(served.dataDir, 'identity'))).toBe(true);
  await apis.core.deleteNamespacedPod({ name: 'claimer', namespace: NAMESPACE });
  await gone('claimer');
  await apis.core.deleteNamespacedPersistentVolumeClaim({ name: 'claim', namespace: NAMESPACE });
  await waitFor('the released PV deleted', async () => {
    try {
      await apis.core.readPersistentVolume({ name: volumeName });
      return undefined;
    } catch (error) {
      return isNotFound(error) ? true : undefined;
    }
  });
  expect(existsSync(served.dataDir)).toBe(false);
}, 120_000);

test('an image with no local command leaves the pod waiting with ErrImagePull', async () => {
  await apis.core.createNamespacedPod({ namespace: NAMESPACE, body: fixturePod('imageless', { image: 'nobody/knows:1' }) });
  const waiting = await waitFor('ErrImagePull', async () => {
    const pod = await readPod('imageless');
    const state = pod.status?.containerStatuses?.[0]?.state?.waiting;
    return state?.reason === 'ErrImagePull' ? { phase: pod.status?.phase, state } : undefined;
  });
  expect(waiting.phase).toBe('Pending');
  expect(waiting.state.message).toContain('nobody/knows:1');
  await apis.core.deleteNamespacedPod({ name: 'imageless', namespace: NAMESPACE });
  await gone('imageless');
}, 120_000);
