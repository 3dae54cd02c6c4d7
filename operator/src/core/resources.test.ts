/**
 * The desired objects of a cluster: the properties the issue names (PVC template, probes, non-root
 * and read-only root, config hash on the pod template, owner references, PDB from the spec, the
 * ServiceMonitor only when asked for and available) and that the config hash follows the config.
 */
import { configHash, credentialsSecret, desiredObjects } from './resources';
import { normalizeSpec } from './spec';
import type { ClusterSpec } from './types';

const cluster = { name: 'kv', namespace: 'db', uid: 'u-1' };

function specOf(raw: object): ClusterSpec {
  const result = normalizeSpec('kv', raw as never, { image: 'dynamokv/node:0.1.0' });
  if (!result.ok) throw new Error(result.problems.join('; '));
  return result.spec;
}

const objects = (raw: object = {}, serviceMonitorAvailable = false) => desiredObjects({ cluster, spec: specOf(raw), statefulSetReplicas: 2, serviceMonitorAvailable }) as any[];
const byKind = (list: any[], kind: string) => list.filter((o) => o.kind === kind);

test('every object is owned by the cluster and labelled as managed by the operator', () => {
  for (const object of objects({ monitoring: { enabled: true } }, true)) {
    expect(object.metadata.ownerReferences).toEqual([{ apiVersion: 'dynamokv.io/v1alpha1', kind: 'DynamoCluster', name: 'kv', uid: 'u-1', controller: true, blockOwnerDeletion: true }]);
    expect(object.metadata.labels['app.kubernetes.io/managed-by']).toBe('dynamokv-operator');
    expect(object.metadata.namespace).toBe('db');
  }
});

test('the StatefulSet: replicas from the machine, PVC template, probes, security context, config hash', () => {
  const [sts] = byKind(objects({ storage: { size: '1Gi', storageClassName: 'fast' }, partitions: 16 }), 'StatefulSet');
  expect(sts.spec.replicas).toBe(2);
  expect(sts.spec.updateStrategy).toEqual({ type: 'OnDelete' });
  expect(sts.spec.serviceName).toBe('kv-peers');
  expect(sts.spec.volumeClaimTemplates[0].spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'fast' });
  const pod = sts.spec.template.spec;
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  const [container] = pod.containers;
  expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
  expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 8080 });
  expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 8080 });
  expect(container.args).toEqual(expect.arrayContaining(['--require-admission', '--partitions=16', '--replication=3', '--node-id=$(POD_NAME)']));
  expect(container.env.map((e: { name: string }) => e.name)).toEqual(['POD_NAME', 'POD_IP', 'DYNAMOKV_PEER_SECRET', 'DYNAMOKV_CONTEXT_SECRET', 'DYNAMOKV_AUTH_TOKEN']);
  expect(sts.spec.template.metadata.annotations['dynamokv.io/config-hash']).toBe(configHash(specOf({ partitions: 16 })));
});

test('the config hash changes with the config and nothing else', () => {
  expect(configHash(specOf({ config: { gossipIntervalMs: 500 } }))).not.toBe(configHash(specOf({})));
  expect(configHash(specOf({ config: { a: 1, b: 2 } }))).toBe(configHash(specOf({ config: { b: 2, a: 1 } })));
  expect(configHash(specOf({ replicas: 7 }))).toBe(configHash(specOf({})));
});

test('services: a headless peer service that publishes unready pods, and a client service', () => {
  const services = byKind(objects(), 'Service');
  expect(services.map((s) => s.metadata.name)).toEqual(['kv-peers', 'kv']);
  expect(services[0].spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
  expect(services[1].spec.ports).toEqual([{ name: 'client', port: 8080, targetPort: 8080, protocol: 'TCP' }]);
});

test('the PDB takes maxUnavailable from the spec', () => {
  expect(byKind(objects({ disruption: { maxUnavailable: 2 } }), 'PodDisruptionBudget')[0].spec.maxUnavailable).toBe(2);
});

test('a ServiceMonitor only when monitoring is on and the CRD is served', () => {
  expect(byKind(objects({ monitoring: { enabled: true } }, false), 'ServiceMonitor')).toHaveLength(0);
  expect(byKind(objects({}, true), 'ServiceMonitor')).toHaveLength(0);
  expect(byKind(objects({ monitoring: { enabled: true, interval: '15s' } }, true), 'ServiceMonitor')[0].spec.endpoints).toEqual([{ port: 'client', path: '/metrics', interval: '15s' }]);
});

test('the Secret carries the three generated credentials and is not among the applied objects', () => {
  const secret = credentialsSecret(cluster, { peerSecret: 'p'.repeat(32), contextSecret: 'c'.repeat(32), authToken: 't'.repeat(32) }) as any;
  expect(Object.keys(secret.stringData)).toEqual(['peer-secret', 'context-secret', 'auth-token']);
  expect(byKind(objects(), 'Secret')).toHaveLength(0);
});
