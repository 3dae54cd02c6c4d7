/**
 * The CRD's contract with kubectl scale and HPA (the scale subresource paths), with the issue's
 * validation rules, and with the status the state machine writes. The committed YAML is compared
 * with this source in operator/src/generateCrd.test.ts.
 */
import { customResourceDefinition } from './crd';

const crd = customResourceDefinition() as any;
const version = crd.spec.versions[0];
const spec = version.schema.openAPIV3Schema.properties.spec;

test('group, kind, short name and the scale subresource for HPA', () => {
  expect(crd.metadata.name).toBe('dynamoclusters.dynamokv.io');
  expect(crd.spec.names).toMatchObject({ kind: 'DynamoCluster', shortNames: ['dkv'] });
  expect(version.name).toBe('v1alpha1');
  expect(version.subresources).toEqual({ status: {}, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' } });
  expect(version.schema.openAPIV3Schema.properties.status.properties.selector.type).toBe('string');
});

test('ring settings are immutable and R, W <= N, replicas >= N at creation', () => {
  for (const field of ['partitions', 'replicationFactor', 'readQuorum', 'writeQuorum']) {
    expect(spec.properties[field]['x-kubernetes-validations']).toEqual([expect.objectContaining({ rule: 'self == oldSelf' })]);
  }
  const rules = spec['x-kubernetes-validations'].map((r: { rule: string }) => r.rule);
  expect(rules).toEqual(expect.arrayContaining(['self.readQuorum <= self.replicationFactor', 'self.writeQuorum <= self.replicationFactor']));
  expect(spec['x-kubernetes-validations'].find((r: { optionalOldSelf?: boolean }) => r.optionalOldSelf)).toMatchObject({ rule: 'oldSelf.hasValue() || self.replicas >= self.replicationFactor' });
});

test('every condition type and phase the machine writes is in the status schema', () => {
  const status = version.schema.openAPIV3Schema.properties.status.properties;
  expect(status.phase.enum).toEqual(expect.arrayContaining(['Creating', 'Running', 'ScalingUp', 'ScalingDown', 'Updating', 'Degraded', 'Paused', 'Invalid']));
  expect(status.conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
  expect(Object.keys(status.operation.properties)).toEqual(['type', 'pod', 'ordinal', 'startedAt', 'step', 'message']);
});

test('printer columns show desired, ready, phase and the operation', () => {
  expect(version.additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual(['Desired', 'Ready', 'Phase', 'Operation', 'Age']);
});
