/**
 * Issue 6, "Must show", on a real control plane: kube-apiserver, etcd and kube-controller-manager
 * (the real StatefulSet controller, EndpointSlice controller and garbage collector), the test
 * kubelet running every pod as a real dynamokv node process (dist/node/src/main.js) on its own
 * 127.x address, and two real operator processes (dist/operator/src/main.js) competing for the
 * leader Lease. One cluster lives through the whole journey, in order:
 *   the CRD applies; schema-invalid clusters are rejected; 3 nodes come up and take writes through
 *   the client Service's endpoints; kubectl scale to 5 joins two nodes one at a time; scale to 4
 *   leaves, hands off and only then shrinks; scale to 2 (below N=3) is refused; the leader is
 *   killed mid-scale-down and the standby finishes it; a removed ordinal comes back; a config
 *   change rolls the pods one at a time; deleting the cluster garbage-collects it.
 * Every step checks its data: all keys written at the start are read back with r=all.
 */
import { startHarness, type Harness, type OperatorProcess } from './harness';
import { ClusterProbe, NodeApi, waitFor } from './clusterProbe';

const NAMESPACE = 'dkv-e2e';
const NAME = 'kv';
const KEYS = 120;
const STEP_TIMEOUT_MS = 120_000;
/** Short leases so that the takeover after a kill takes seconds, not the 15 s default. */
const LEASE_ENV = { LEASE_DURATION_SECONDS: '4', RENEW_DEADLINE_SECONDS: '3', RETRY_PERIOD_SECONDS: '1' };

let harness: Harness | undefined;
let probe: ClusterProbe;
let nodes: NodeApi;
const written = new Map<string, string>();

jest.setTimeout(420_000);

function h(): Harness {
  if (harness === undefined) throw new Error('the harness did not start');
  return harness;
}

function clusterManifest(spec: Record<string, unknown>, name = NAME): string {
  return JSON.stringify({ apiVersion: 'dynamokv.io/v1alpha1', kind: 'DynamoCluster', metadata: { name, namespace: NAMESPACE }, spec });
}

const podNames = (count: number) => Array.from({ length: count }, (_, i) => ({ namespace: NAMESPACE, name: `${NAME}-${i}` }));
const diagnostics = () => h().diagnostics(podNames(5));
const wait = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = STEP_TIMEOUT_MS) => waitFor(what, check, timeoutMs, diagnostics);

async function leaseHolder(): Promise<string | undefined> {
  const lease = await probe.kube.get('/apis/coordination.k8s.io/v1/namespaces/default/leases/dynamokv-operator');
  return (lease?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;
}

/**
 * Reads every key written at the start with r=all through the client endpoints. First waits until
 * every endpoint's node has the same ring (gossip spreads a membership change within a few
 * rounds): a node that still plans with a member that left would rightly refuse r=all.
 */
async function readAllKeys(): Promise<void> {
  const endpoints = await probe.clientEndpoints();
  expect(endpoints.length).toBeGreaterThan(0);
  await wait('every node to see the same ring', async () => {
    const rings = await Promise.all(endpoints.map((ip) => nodes.ring(ip)));
    const views = new Set(rings.map((r) => JSON.stringify([r.members.map((m) => `${m.id}:${m.state}`).sort(), r.partitions])));
    return views.size === 1 ? true : undefined;
  }, 30_000);
  let i = 0;
  for (const [key, value] of written) {
    const ip = endpoints[i++ % endpoints.length] as string;
    expect(await nodes.get(ip, key)).toEqual([value]);
  }
}

async function ringOf(ip: string) {
  return nodes.ring(ip);
}

async function events(): Promise<{ reason: string; message: string }[]> {
  const list = await probe.list('Event');
  return list
    .filter((e) => (e.involvedObject as { kind?: string; name?: string } | undefined)?.kind === 'DynamoCluster')
    .map((e) => ({ reason: String(e.reason), message: String(e.message) }));
}

/**
 * A stand-in for the prometheus-operator's ServiceMonitor CRD (which cannot be downloaded here):
 * enough for the API server to serve monitoring.coreos.com/v1 servicemonitors.
 */
const SERVICE_MONITOR_CRD = JSON.stringify({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'servicemonitors.monitoring.coreos.com' },
  spec: {
    group: 'monitoring.coreos.com',
    scope: 'Namespaced',
    names: { kind: 'ServiceMonitor', plural: 'servicemonitors', singular: 'servicemonitor', listKind: 'ServiceMonitorList' },
    versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
  },
});

beforeAll(async () => {
  harness = await startHarness();
  await h().kubectlOk(['create', 'namespace', NAMESPACE]);
  await h().kubectlOk(['apply', '-f', '-'], SERVICE_MONITOR_CRD);
  await h().kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', 'crd/servicemonitors.monitoring.coreos.com']);
  probe = await ClusterProbe.connect(h().controlPlane.kubeconfigPath, NAMESPACE, NAME);
  await h().startOperator('operator-a', LEASE_ENV);
  await wait('operator-a to lead', async () => ((await leaseHolder()) === 'operator-a' ? true : undefined));
  await h().startOperator('operator-b', LEASE_ENV);
}, 180_000);

afterAll(async () => {
  probe?.close();
  await harness?.stop();
}, 60_000);

test('the CRD applies: established, served with its short name, and re-applying it changes nothing', async () => {
  const crd = JSON.parse(await h().kubectlOk(['get', 'crd', 'dynamoclusters.dynamokv.io', '-o', 'json'])) as { status: { conditions: { type: string; status: string }[] } };
  expect(crd.status.conditions.find((c) => c.type === 'Established')?.status).toBe('True');
  expect(await h().kubectlOk(['apply', '--server-side', '-f', 'crds/dynamoclusters.dynamokv.io.yaml'])).toContain('serverside-applied');
  expect((await h().kubectl(['get', 'dkv', '-n', NAMESPACE])).code).toBe(0);
});

test.each([
  ['R above N', { replicas: 3, readQuorum: 4 }, 'readQuorum must not exceed replicationFactor'],
  ['a partition count that is not a power of two', { replicas: 3, partitions: 24 }, 'spec.partitions'],
  ['a new cluster below N', { replicas: 2, replicationFactor: 3 }, 'a new cluster needs replicas >= replicationFactor'],
  ['a wrong type', { replicas: 'three' }, 'spec.replicas'],
])('a schema-invalid DynamoCluster is rejected by the API server: %s', async (_what, spec, message) => {
  const result = await h().kubectl(['apply', '-f', '-'], clusterManifest(spec, 'invalid'));
  expect(result.code).not.toBe(0);
  expect(result.stderr).toContain(message);
  expect((await h().kubectl(['get', 'dkv', 'invalid', '-n', NAMESPACE])).code).not.toBe(0);
});

test('a 3-node cluster comes up: owned objects, node processes, Ready pods, writes through the client endpoints', async () => {
  await h().kubectlOk(['apply', '-f', '-'], clusterManifest({
    replicas: 3, partitions: 16, replicationFactor: 3, readQuorum: 2, writeQuorum: 2,
    storage: { size: '1Gi', retainOnDelete: false },
    // A slow handoff keeps each join and leave streaming for a moment, so the takeover test can
    // kill the leader while a leave is in flight.
    config: { handoffBytesPerSecondMax: 32768, gossipIntervalMs: 500 },
    monitoring: { enabled: true, interval: '15s' },
  }));
  const view = await wait('3 Ready nodes', () => probe.settled(3));
  expect(view.status.phase).toBe('Running');
  expect(view.status.members?.map((m) => `${m.pod}:${m.state}`)).toEqual(['kv-0:normal', 'kv-1:normal', 'kv-2:normal']);
  const uid = view.raw.metadata?.uid;
  for (const [kind, name] of [['StatefulSet', 'kv'], ['Service', 'kv'], ['Service', 'kv-peers'], ['ConfigMap', 'kv-config'], ['PodDisruptionBudget', 'kv'], ['Secret', 'kv-credentials'], ['ServiceMonitor', 'kv']] as const) {
    const object = await probe.get(kind, name);
    expect(object?.metadata?.ownerReferences).toEqual([expect.objectContaining({ uid, controller: true })]);
  }
  for (const { name } of podNames(3)) {
    const running = h().kubelet.podProcess(NAMESPACE, name);
    expect(running).toBeDefined();
    expect(() => process.kill(running?.pid ?? -1, 0)).not.toThrow();
  }
  const endpoints = await wait('3 client endpoints', async () => {
    const ips = await probe.clientEndpoints();
    return ips.length === 3 ? ips : undefined;
  });
  expect(endpoints).toEqual(podNames(3).map((p) => h().kubelet.podProcess(NAMESPACE, p.name)?.ip).sort());
  nodes = new NodeApi(await probe.authToken());
  const value = 'x'.repeat(900);
  for (let i = 0; i < KEYS; i++) {
    const key = `key-${i}`;
    await nodes.put(endpoints[i % endpoints.length] as string, key, `${value}-${i}`);
    written.set(key, `${value}-${i}`);
  }
  await readAllKeys();
  // Ring settings are fixed: the API server refuses a change.
  const change = await h().kubectl(['patch', 'dkv', NAME, '-n', NAMESPACE, '--type=merge', '-p', '{"spec":{"partitions":32}}']);
  expect(change.stderr).toContain('partitions is immutable after creation');
});

test('kubectl scale to 5: two joins, one at a time, and all data readable with N replicas', async () => {
  const samples: { stsReplicas: number; joining: number; kv3: string | undefined }[] = [];
  await h().kubectlOk(['scale', `dynamocluster/${NAME}`, '-n', NAMESPACE, '--replicas=5']);
  const kv0 = h().kubelet.podProcess(NAMESPACE, 'kv-0')?.ip as string;
  await wait('5 Ready nodes', async () => {
    // Read the StatefulSet first, then the ring: the ring can only be newer than the size seen.
    const stsReplicas = (await probe.statefulSetReplicas()) ?? 0;
    const ring = await ringOf(kv0);
    samples.push({ stsReplicas, joining: ring.members.filter((m) => m.state === 'joining').length, kv3: ring.members.find((m) => m.id === 'kv-3')?.state });
    return probe.settled(5);
  });
  expect(samples.every((s) => s.joining <= 1)).toBe(true);
  // The fifth pod exists only after the fourth node finished joining.
  expect(samples.filter((s) => s.stsReplicas === 5).every((s) => s.kv3 === 'normal')).toBe(true);
  expect(samples.some((s) => s.stsReplicas === 4)).toBe(true);
  // A pass writes the status first and records its events last, so they may trail a settled status.
  await wait('the Joined events of kv-3 and kv-4', async () => {
    const reasons = (await events()).map((e) => `${e.reason} ${e.message.split(' ')[0]}`);
    return ['Joined kv-3', 'Joined kv-4'].every((r) => reasons.includes(r)) ? true : undefined;
  }, 15_000);
  const ring = await ringOf(kv0);
  expect(ring.members.filter((m) => m.state === 'normal').map((m) => m.id).sort()).toEqual(['kv-0', 'kv-1', 'kv-2', 'kv-3', 'kv-4']);
  expect(ring.partitions.every((p) => new Set(p.owners).size === 3)).toBe(true);
  expect((await nodes.handoff(kv0)).transfers.filter((t) => t.state !== 'done')).toEqual([]);
  expect((await probe.clientEndpoints()).length).toBe(5);
  await readAllKeys();
});

test('scale to 4: the node leaves, hands off its data, and only then does the StatefulSet shrink; no data lost', async () => {
  const samples: { stsReplicas: number; kv4: string | undefined; kv4Readyz: number | undefined; kv4Backlog: number | undefined }[] = [];
  const kv0 = h().kubelet.podProcess(NAMESPACE, 'kv-0')?.ip as string;
  const kv4ip = h().kubelet.podProcess(NAMESPACE, 'kv-4')?.ip as string;
  await h().kubectlOk(['scale', `dynamocluster/${NAME}`, '-n', NAMESPACE, '--replicas=4']);
  await wait('4 Ready nodes', async () => {
    const stsReplicas = (await probe.statefulSetReplicas()) ?? 0;
    const kv4 = (await ringOf(kv0)).members.find((m) => m.id === 'kv-4')?.state;
    const kv4Readyz = (await fetch(`http://${kv4ip}:8080/readyz`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.status;
    const kv4Backlog = (await nodes.members(kv4ip).catch(() => undefined))?.hintBacklog;
    samples.push({ stsReplicas, kv4, kv4Readyz, kv4Backlog });
    return probe.settled(4);
  });
  expect(samples.filter((s) => s.stsReplicas === 4).every((s) => s.kv4 === 'left')).toBe(true);
  expect(samples.some((s) => s.stsReplicas === 5 && s.kv4 !== 'normal')).toBe(true);
  // A leaving or left node is not ready (/readyz 503), yet it answers the hint backlog the operator
  // must read before removing it (readHints asks the pod of a scale-down whether Ready or not).
  expect(samples.some((s) => (s.kv4 === 'leaving' || s.kv4 === 'left') && s.kv4Readyz === 503 && typeof s.kv4Backlog === 'number')).toBe(true);
  const reasons = (await events()).map((e) => e.reason);
  expect(reasons.indexOf('LeaveSent')).toBeGreaterThanOrEqual(0);
  // The removal waits for the left node's hints (WaitHints, when it still held some or had not
  // yet learned it left) and only then shrinks.
  const shrinkAt = reasons.lastIndexOf('Shrink');
  expect(shrinkAt).toBeGreaterThan(reasons.lastIndexOf('LeaveSent'));
  expect(reasons.lastIndexOf('WaitHints')).toBeLessThan(shrinkAt);
  expect(await probe.get('PersistentVolumeClaim', 'data-kv-4')).toBeUndefined();
  expect(h().kubelet.podProcess(NAMESPACE, 'kv-4')).toBeUndefined();
  await readAllKeys();
});

test('scale to 2 with N=3 is blocked: ScaleDownBlocked and an event, nothing removed', async () => {
  await h().kubectlOk(['scale', `dynamocluster/${NAME}`, '-n', NAMESPACE, '--replicas=2']);
  const blocked = await wait('ScaleDownBlocked', async () => {
    const condition = await probe.condition('ScaleDownBlocked');
    return condition?.status === 'True' ? condition : undefined;
  });
  expect(blocked.reason).toBe('BelowReplicationFactor');
  await wait('the ScaleDownBlocked event', async () => ((await events()).some((e) => e.reason === 'ScaleDownBlocked') ? true : undefined));
  // Several reconcile passes later (each pass is at most 5 s apart while not settled), still 4.
  const view = await probe.cluster();
  expect(view?.status.operation ?? null).toBeNull();
  expect(await probe.statefulSetReplicas()).toBe(4);
  expect((await probe.list('Pod', 'app.kubernetes.io/instance=kv')).length).toBe(4);
  expect((await ringOf(h().kubelet.podProcess(NAMESPACE, 'kv-0')?.ip as string)).members.filter((m) => m.state === 'normal')).toHaveLength(4);
  await readAllKeys();
});

test('the leader killed mid-scale-down: the standby takes the Lease and finishes the recorded operation', async () => {
  const leaderName = await leaseHolder();
  const leader = h().operators.find((o) => o.name === leaderName) as OperatorProcess;
  const standby = h().operators.find((o) => o.name !== leaderName) as OperatorProcess;
  expect(leader).toBeDefined();
  await h().kubectlOk(['scale', `dynamocluster/${NAME}`, '-n', NAMESPACE, '--replicas=3']);
  const recorded = await wait('the scale-down recorded in status', async () => {
    const operation = (await probe.cluster())?.status.operation;
    return operation?.type === 'ScaleDown' && (operation.step === 'LeaveSent' || operation.step === 'Leaving') ? operation : undefined;
  });
  expect(recorded.pod).toBe('kv-3');
  await leader.stop('SIGKILL');
  // The dead leader cannot have finished it: the intent is still there, the pod still exists.
  expect((await probe.cluster())?.status.operation?.type).toBe('ScaleDown');
  await wait('the standby to take the Lease', async () => ((await leaseHolder()) === standby.name ? true : undefined));
  await wait('3 Ready nodes', () => probe.settled(3));
  const kv0 = h().kubelet.podProcess(NAMESPACE, 'kv-0')?.ip as string;
  expect((await ringOf(kv0)).members.find((m) => m.id === 'kv-3')?.state).toBe('left');
  expect(await probe.get('PersistentVolumeClaim', 'data-kv-3')).toBeUndefined();
  expect(standby.output()).toContain('became the leader');
  const started = (await events()).filter((e) => e.reason === 'ScaleDownStarted' && e.message.startsWith('removing kv-3'));
  expect(started).toHaveLength(1);
  // The gauges follow the status at the end of a pass, which may trail the status write a moment.
  const metrics = await wait('the standby\'s metrics to show the cluster Ready', async () => {
    const text = await (await fetch(`http://127.0.0.1:${standby.metricsPort}/metrics`)).text();
    return /dynamokv_operator_cluster_condition\{namespace="dkv-e2e",cluster="kv",condition="Ready"\} 1/.test(text) ? text : undefined;
  }, 15_000);
  expect(metrics).toMatch(/^dynamokv_operator_is_leader 1$/m);
  await readAllKeys();
});

test('a removed ordinal comes back: its retained claim of a node that left is replaced and the node joins again', async () => {
  await h().kubectlOk(['patch', 'dkv', NAME, '-n', NAMESPACE, '--type=merge', '-p', '{"spec":{"scaling":{"deletePVCOnScaleDown":false}}}']);
  await h().kubectlOk(['scale', `dynamocluster/${NAME}`, '-n', NAMESPACE, '--replicas=4']);
  await wait('4 Ready nodes', () => probe.settled(4));
  await h().kubectlOk(['scale', `dynamocluster/${NAME}`, '-n', NAMESPACE, '--replicas=3']);
  await wait('3 Ready nodes', () => probe.settled(3));
  const retained = await probe.get('PersistentVolumeClaim', 'data-kv-3');
  expect(retained).toBeDefined();
  await h().kubectlOk(['scale', `dynamocluster/${NAME}`, '-n', NAMESPACE, '--replicas=4']);
  await wait('4 Ready nodes again', () => probe.settled(4));
  const claim = await probe.get('PersistentVolumeClaim', 'data-kv-3');
  expect(claim?.metadata?.uid).not.toBe(retained?.metadata?.uid);
  expect((await events()).some((e) => e.reason === 'DeleteStaleClaim')).toBe(true);
  const kv0 = h().kubelet.podProcess(NAMESPACE, 'kv-0')?.ip as string;
  expect((await ringOf(kv0)).members.find((m) => m.id === 'kv-3')?.state).toBe('normal');
  await readAllKeys();
});

test('a config change rolls the pods one at a time, highest ordinal first, each after Ready and drained hints', async () => {
  const before = (await probe.get('StatefulSet', NAME))?.status as { updateRevision?: string } | undefined;
  await h().kubectlOk(['patch', 'dkv', NAME, '-n', NAMESPACE, '--type=merge', '-p', '{"spec":{"config":{"handoffBytesPerSecondMax":32768,"gossipIntervalMs":400}}}']);
  const samples: { notReady: string[] }[] = [];
  const restarts: string[] = [];
  const known = new Map<string, string | undefined>();
  await wait('every pod on the new revision and the cluster settled', async () => {
    const sts = await probe.get('StatefulSet', NAME);
    const revision = (sts?.status as { updateRevision?: string } | undefined)?.updateRevision;
    const pods = await probe.list('Pod', 'app.kubernetes.io/instance=kv');
    const ready = (p: (typeof pods)[number]) => ((p.status as { conditions?: { type: string; status: string }[] }).conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
    samples.push({ notReady: ['kv-0', 'kv-1', 'kv-2', 'kv-3'].filter((name) => !pods.some((p) => p.metadata?.name === name && ready(p) && p.metadata?.deletionTimestamp === undefined)) });
    for (const pod of pods) {
      const name = pod.metadata?.name ?? '';
      if (known.has(name) && known.get(name) !== pod.metadata?.uid && !restarts.includes(name)) restarts.push(name);
      known.set(name, pod.metadata?.uid);
    }
    const updated = revision !== before?.updateRevision && pods.length === 4 && pods.every((p) => p.metadata?.labels?.['controller-revision-hash'] === revision);
    return updated ? probe.settled(4) : undefined;
  }, 90_000);
  expect(samples.every((s) => s.notReady.length <= 1)).toBe(true);
  expect(restarts).toEqual(['kv-3', 'kv-2', 'kv-1', 'kv-0']);
  // The operator records the last PodUpdated event in the pass after the one that settled the
  // status, so the events are waited for rather than read once.
  await wait('a PodUpdated event for every pod', async () => {
    const reasons = (await events()).filter((e) => e.reason === 'PodUpdated').map((e) => e.message.split(' ')[0]);
    return ['kv-3', 'kv-2', 'kv-1', 'kv-0'].every((pod) => reasons.includes(pod)) ? true : undefined;
  }, 30_000);
  await readAllKeys();
});

test('the cluster deleted: every owned object is garbage-collected and the node processes stop', async () => {
  expect((await probe.list('Pod', 'app.kubernetes.io/instance=kv')).length).toBe(4);
  await h().kubectlOk(['delete', 'dynamocluster', NAME, '-n', NAMESPACE, '--wait=false']);
  await wait('owned objects to be gone', async () => {
    const remaining = [
      ...(await probe.list('StatefulSet')), ...(await probe.list('Service')), ...(await probe.list('PodDisruptionBudget')),
      ...(await probe.list('ConfigMap', 'app.kubernetes.io/managed-by=dynamokv-operator')), ...(await probe.list('Secret')),
      ...(await probe.list('Pod')), ...(await probe.list('PersistentVolumeClaim')), ...(await probe.list('ServiceMonitor')),
    ];
    return remaining.length === 0 ? true : undefined;
  });
  await wait('the node processes to stop', async () => (podNames(4).every((p) => h().kubelet.podProcess(NAMESPACE, p.name) === undefined) ? true : undefined));
});

test('SIGTERM: the leader releases the Lease and exits cleanly; a new standby takes over without waiting for expiry', async () => {
  const leaderName = await leaseHolder();
  const leader = h().operators.find((o) => o.name === leaderName && o.child.exitCode === null) as OperatorProcess;
  expect(leader).toBeDefined();
  const health = await fetch(`http://127.0.0.1:${leader.metricsPort}/healthz`);
  expect(health.status).toBe(200);
  const next = await h().startOperator('operator-c', LEASE_ENV);
  expect(await leader.stop('SIGTERM')).toBe(0);
  expect(leader.output()).toContain('released the Lease');
  // Released: the holder is empty (or operator-c took it already), never the stopped process.
  expect(['', 'operator-c']).toContain((await leaseHolder()) ?? '');
  await wait('operator-c to lead', async () => ((await leaseHolder()) === 'operator-c' ? true : undefined), 15_000);
  expect(next.output()).toContain('became the leader');
});
