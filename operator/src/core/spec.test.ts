/**
 * Spec validation and defaulting: every default is filled in, every rule the CRD states is checked
 * again (the operator never trusts that the CRD in the cluster is its own), and each problem is
 * named so that the Degraded condition can tell the user what to fix.
 */
import { OPERATOR_OWNED_CONFIG_KEYS, normalizeSpec, ringSettings } from './spec';

const defaults = { image: 'dynamokv/node:0.1.0' };

test('an empty spec gets every default', () => {
  const result = normalizeSpec('kv', {}, defaults);
  expect(result).toEqual({
    ok: true,
    spec: {
      replicas: 3, image: 'dynamokv/node:0.1.0', imagePullPolicy: undefined, partitions: 256, replicationFactor: 3, readQuorum: 2, writeQuorum: 2,
      storage: { size: '10Gi', storageClassName: undefined, retainOnDelete: true }, resources: {}, config: {},
      podTemplate: { labels: {}, annotations: {}, spec: {} }, disruption: { maxUnavailable: 1 },
      scaling: { deletePVCOnScaleDown: true, joinTimeoutSeconds: 1800, leaveTimeoutSeconds: 3600, updateTimeoutSeconds: 600 },
      monitoring: { enabled: false, interval: '30s' }, paused: false,
    },
  });
});

test.each([
  [{ readQuorum: 4 }, 'spec.readQuorum 4 exceeds replicationFactor 3'],
  [{ writeQuorum: 2, replicationFactor: 1, readQuorum: 1 }, 'spec.writeQuorum 2 exceeds replicationFactor 1'],
  [{ partitions: 24 }, 'spec.partitions 24 is not a power of two'],
  [{ replicas: 0 }, 'spec.replicas must be an integer from 1 to 1000'],
  [{ replicas: 2.5 }, 'spec.replicas must be an integer from 1 to 1000'],
  [{ storage: { size: 'ten' } }, 'spec.storage.size "ten" must be a quantity such as 10Gi'],
  [{ config: { nodeId: 'x' } }, 'spec.config.nodeId is set by the operator and may not be given'],
  [{ config: [] }, 'spec.config must be an object'],
  [{ podTemplate: { spec: { containers: [] } } }, 'spec.podTemplate.spec.containers is not supported'],
  [{ monitoring: { interval: 'soon' } }, 'spec.monitoring.interval "soon" must be a duration such as 30s'],
  [{ paused: 'yes' }, 'spec.paused must be true or false'],
  [{ imagePullPolicy: 'Sometimes' }, 'spec.imagePullPolicy must be one of Always, IfNotPresent, Never'],
])('rejects %j', (spec, problem) => {
  const result = normalizeSpec('kv', spec as never, defaults);
  expect(result.ok).toBe(false);
  if (!result.ok) expect(result.problems.some((p) => p.startsWith(problem))).toBe(true);
});

test('rejects names that cannot prefix pod and service names', () => {
  const result = normalizeSpec('KV_store', {}, defaults);
  expect(result.ok).toBe(false);
  expect(normalizeSpec('a'.repeat(41), {}, defaults).ok).toBe(false);
  expect(normalizeSpec('a'.repeat(40), {}, defaults).ok).toBe(true);
});

test('every secret and identity key of the node is owned by the operator', () => {
  for (const key of ['peerSecret', 'contextSecret', 'authToken', 'nodeId', 'dataDir', 'requireAdmission']) expect(OPERATOR_OWNED_CONFIG_KEYS).toContain(key);
});

test('ring settings string names Q, N, R and W', () => {
  expect(ringSettings({ partitions: 16, replicationFactor: 3, readQuorum: 2, writeQuorum: 1 })).toBe('partitions=16,replicationFactor=3,readQuorum=2,writeQuorum=1');
});
