/**
 * The test kubelet's Node: registration (Ready, capacity and allocatable from this machine,
 * InternalIP 127.0.0.1, labels as a kubelet sets them), the status heartbeat and the Lease in
 * kube-node-lease that the node lifecycle controller watches.
 */
import { hostname } from 'node:os';

import type { V1Node, V1NodeStatus } from '@kubernetes/client-node';

import { isConflict, isNotFound, type KubeApis } from './kubeApi';

const LEASE_DURATION_SECONDS = 40;

export class NodeRegistration {
  private readonly registeredAt = new Date();

  constructor(
    private readonly apis: KubeApis,
    private readonly nodeName: string,
    private readonly hostIp: string,
    private readonly capacity: Readonly<Record<string, string>>,
    private readonly log: (line: string) => void,
  ) {}

  labels(): Record<string, string> {
    return { 'kubernetes.io/hostname': this.nodeName, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch, 'node.kubernetes.io/instance-type': 'dynamokv-test-kubelet' };
  }

  private status(): V1NodeStatus {
    const now = new Date();
    const condition = (type: string, status: string, reason: string, message: string) => ({ type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: this.registeredAt });
    return {
      capacity: this.capacity,
      allocatable: this.capacity,
      conditions: [
        condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        condition('Ready', 'True', 'KubeletReady', 'the dynamokv test kubelet is posting ready status'),
      ],
      addresses: [
        { type: 'InternalIP', address: this.hostIp },
        { type: 'Hostname', address: this.nodeName },
      ],
      nodeInfo: {
        machineID: 'dynamokv-test',
        systemUUID: 'dynamokv-test',
        bootID: String(process.pid),
        kernelVersion: 'local',
        osImage: `local (${hostname()})`,
        containerRuntimeVersion: 'local-process://1',
        kubeletVersion: 'v1.34.4',
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: this.labels()['kubernetes.io/arch'] ?? process.arch,
      },
    };
  }

  /** Creates the Node, or takes over an existing one of the same name (a restarted kubelet). */
  async register(): Promise<void> {
    const node: V1Node = { apiVersion: 'v1', kind: 'Node', metadata: { name: this.nodeName, labels: this.labels() }, spec: {}, status: this.status() };
    try {
      await this.apis.core.createNode({ body: node });
      this.log(`registered node ${this.nodeName}`);
    } catch (error) {
      if (!isConflict(error)) throw error;
      await this.apis.core.patchNode({ name: this.nodeName, body: { metadata: { labels: this.labels() } } }, this.apis.strategicMerge);
    }
    await this.postStatus();
  }

  /** Posts status with a fresh heartbeat. */
  async postStatus(): Promise<void> {
    await this.apis.core.patchNodeStatus({ name: this.nodeName, body: { status: this.status() } }, this.apis.strategicMerge);
  }

  /** Renews (or creates) the node's Lease in kube-node-lease: the heartbeat node lifecycle reads. */
  async renewLease(): Promise<void> {
    const { coordination, k8s } = this.apis;
    const namespace = 'kube-node-lease';
    const spec = { holderIdentity: this.nodeName, leaseDurationSeconds: LEASE_DURATION_SECONDS, renewTime: new k8s.V1MicroTime() };
    try {
      const lease = await coordination.readNamespacedLease({ name: this.nodeName, namespace });
      await coordination.replaceNamespacedLease({ name: this.nodeName, namespace, body: { ...lease, spec: { ...lease.spec, ...spec } } });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      const node = await this.apis.core.readNode({ name: this.nodeName });
      const owner = { apiVersion: 'v1', kind: 'Node', name: this.nodeName, uid: node.metadata?.uid ?? '' };
      await coordination.createNamespacedLease({ namespace, body: { metadata: { name: this.nodeName, namespace, ownerReferences: [owner] }, spec } });
    }
  }
}
