/**
 * The test kubelet's pure rules, checked without a control plane: image lookup, Kubernetes' $(VAR)
 * expansion, environment building with the downward API and config references, and the mount path
 * rewriting rule (whole path prefixes only, longest mount first, each occurrence once).
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';

import { containerEnvironment, expandVariables, findImageCommand, mountPathRewriter, parseQuantity, referencedConfigObjects, type ImageCommand } from './podSpec';

const facts = { podIp: '127.0.3.4', hostIp: '127.0.0.1', nodeName: 'node-a' };
const pod: V1Pod = {
  metadata: { name: 'kv-0', namespace: 'ns1', uid: 'u-1', labels: { app: 'kv' } },
  spec: { containers: [], nodeName: 'node-a' },
};
const noSources = { configMap: () => undefined, secret: () => undefined };

test('an image finds its command by exact name, then by name without tag or digest', () => {
  const exact: ImageCommand = () => ({ command: 'exact', args: [] });
  const byName: ImageCommand = () => ({ command: 'name', args: [] });
  const images = { 'dynamokv/node': byName, 'dynamokv/node:special': exact, 'localhost:5000/x': byName };
  expect(findImageCommand(images, 'dynamokv/node:special')).toBe(exact);
  expect(findImageCommand(images, 'dynamokv/node:0.1.0')).toBe(byName);
  expect(findImageCommand(images, 'dynamokv/node@sha256:abc')).toBe(byName);
  expect(findImageCommand(images, 'localhost:5000/x:1')).toBe(byName);
  expect(findImageCommand(images, 'other/image:1')).toBeUndefined();
  expect(findImageCommand(images, 'toString')).toBeUndefined();
});

test('$(VAR) expansion follows Kubernetes: defined replaced, undefined kept, $$ escapes, unterminated kept', () => {
  const vars = new Map([
    ['A', 'one'],
    ['B', 'two'],
  ]);
  const lookup = (name: string) => vars.get(name);
  expect(expandVariables('$(A)-$(B)', lookup)).toBe('one-two');
  expect(expandVariables('$(MISSING)/$(A)', lookup)).toBe('$(MISSING)/one');
  expect(expandVariables('$$(A) costs $$5', lookup)).toBe('$(A) costs $5');
  expect(expandVariables('tail $(A', lookup)).toBe('tail $(A');
  expect(expandVariables('a$b$', lookup)).toBe('a$b$');
});

test('env: envFrom first, then env in order with expansion of earlier values; fieldRefs and key refs resolve', () => {
  const sources = {
    configMap: (name: string) => (name === 'cfg' ? { MODE: Buffer.from('fast'), 'bad name': Buffer.from('x') } : undefined),
    secret: (name: string) => (name === 'sec' ? { token: Buffer.from('s3cret') } : undefined),
  };
  const container: V1Container = {
    name: 'main',
    envFrom: [{ configMapRef: { name: 'cfg' }, prefix: 'CFG_' }],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
      { name: 'ADDR', value: '$(POD_IP):8080 $(LATER) $(CFG_MODE)' },
      { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'sec', key: 'token' } } },
      { name: 'OPTIONAL', valueFrom: { configMapKeyRef: { name: 'absent', key: 'k', optional: true } } },
      { name: 'LATER', value: 'late' },
    ],
  };
  const { env, problems } = containerEnvironment(container, pod, facts, sources, {});
  expect(problems).toEqual([]);
  expect(Object.fromEntries(env)).toEqual({ CFG_MODE: 'fast', POD_NAME: 'kv-0', POD_IP: '127.0.3.4', APP: 'kv', ADDR: '127.0.3.4:8080 $(LATER) fast', TOKEN: 's3cret', LATER: 'late' });
});

test('env: a missing non-optional reference is a problem that keeps the container from starting', () => {
  const container: V1Container = { name: 'main', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } }], envFrom: [{ configMapRef: { name: 'gone' } }] };
  const { problems } = containerEnvironment(container, pod, facts, noSources, {});
  expect(problems).toEqual(['configmap "gone" not found', 'env X: secret "nope" not found']);
});

test('env: resourceFieldRef uses the container value with its divisor, else node capacity for limits', () => {
  const container: V1Container = {
    name: 'main',
    resources: { limits: { memory: '1Gi' }, requests: { cpu: '500m' } },
    env: [
      { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
      { name: 'CPU_REQ', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
      { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
    ],
  };
  const { env } = containerEnvironment(container, pod, facts, noSources, { cpu: '2' });
  expect(Object.fromEntries(env)).toEqual({ MEM_MI: '1024', CPU_REQ: '500', CPU_LIMIT: '2' });
  expect(parseQuantity('1.5k')).toBe(1500);
  expect(parseQuantity('12Zi')).toBeUndefined();
});

test('mount paths are rewritten as whole path prefixes, longest first, once', () => {
  const rewrite = mountPathRewriter([
    { mountPath: '/data', localPath: '/tmp/pv-1' },
    { mountPath: '/data/logs/', localPath: '/tmp/logs-2' },
    { mountPath: '/etc/config', localPath: '/tmp/pod/config' },
  ]);
  expect(rewrite('--data-dir=/data')).toBe('--data-dir=/tmp/pv-1');
  expect(rewrite('/data/x.db and /data/logs/today')).toBe('/tmp/pv-1/x.db and /tmp/logs-2/today');
  expect(rewrite('/database /srv/data /data2 /data.old')).toBe('/database /srv/data /data2 /data.old');
  expect(rewrite('a:/etc/config,b:/data')).toBe('a:/tmp/pod/config,b:/tmp/pv-1');
  // The local path contains a mount path; it must not be rewritten a second time.
  expect(mountPathRewriter([{ mountPath: '/tmp', localPath: '/tmp/kubelet/tmp' }])('/tmp/x')).toBe('/tmp/kubelet/tmp/x');
  expect(mountPathRewriter([])('/data')).toBe('/data');
});

test('the config objects a pod refers to are collected from env, envFrom and volumes', () => {
  const withRefs: V1Pod = {
    spec: {
      containers: [{ name: 'c', envFrom: [{ secretRef: { name: 's1' } }], env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'c1', key: 'k' } } }] }],
      volumes: [{ name: 'v', configMap: { name: 'c2' } }, { name: 'w', secret: { secretName: 's2' } }, { name: 'p', projected: { sources: [{ configMap: { name: 'c3' } }] } }],
    },
  };
  const refs = referencedConfigObjects(withRefs);
  expect([...refs.configMaps].sort()).toEqual(['c1', 'c2', 'c3']);
  expect([...refs.secrets].sort()).toEqual(['s1', 's2']);
});
