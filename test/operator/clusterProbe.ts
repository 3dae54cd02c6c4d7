/**
 * What the operator tests look at: the DynamoCluster and its objects through the API server (the
 * operator's own KubeClient, so no kubectl process per poll), the nodes through their HTTP API at
 * the pod IPs the client Service's EndpointSlices list, and a bounded wait.
 */
import { KubeClient, type RawObject } from '../../operator/src/kube/client';
import { resourcePath, withQuery } from '../../operator/src/kube/paths';
import { waitFor as waitUntil } from '../k8s/testing';

export const POLL_MS = 200;

/** test/k8s/testing.ts waitFor, polling every POLL_MS, with a positional timeout. */
export function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, diagnostics: () => string = () => ''): Promise<T> {
  return waitUntil(what, check, { timeoutMs, intervalMs: POLL_MS, diagnostics });
}

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

export interface ClusterView {
  raw: RawObject;
  spec: { replicas: number };
  status: {
    phase?: string;
    replicas?: number;
    readyReplicas?: number;
    conditions?: Condition[];
    operation?: { type: string; pod: string; step: string; message: string } | null;
    members?: { pod: string; state: string }[];
  };
}

export class ClusterProbe {
  private constructor(
    readonly kube: KubeClient,
    readonly namespace: string,
    readonly name: string,
  ) {}

  static async connect(kubeconfigPath: string, namespace: string, name: string): Promise<ClusterProbe> {
    return new ClusterProbe(await KubeClient.create({ kubeconfigPath }), namespace, name);
  }

  async cluster(): Promise<ClusterView | undefined> {
    const raw = await this.kube.get(resourcePath('DynamoCluster', this.namespace, this.name));
    return raw === undefined ? undefined : { raw, spec: raw.spec as ClusterView['spec'], status: (raw.status ?? {}) as ClusterView['status'] };
  }

  async condition(type: string): Promise<Condition | undefined> {
    return (await this.cluster())?.status.conditions?.find((c) => c.type === type);
  }

  /** The cluster settled at `replicas`: Ready, nothing in flight, every pod Ready. */
  async settled(replicas: number): Promise<ClusterView | undefined> {
    const view = await this.cluster();
    const ready = view?.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (view === undefined || !ready || view.status.operation != null || view.status.readyReplicas !== replicas || view.status.replicas !== replicas) return undefined;
    return (await this.statefulSetReplicas()) === replicas ? view : undefined;
  }

  async statefulSetReplicas(): Promise<number | undefined> {
    const sts = await this.kube.get(resourcePath('StatefulSet', this.namespace, this.name));
    return (sts?.spec as { replicas?: number } | undefined)?.replicas;
  }

  async get(kind: Parameters<typeof resourcePath>[0], name: string): Promise<RawObject | undefined> {
    return this.kube.get(resourcePath(kind, this.namespace, name));
  }

  async list(kind: Parameters<typeof resourcePath>[0], labelSelector?: string): Promise<RawObject[]> {
    const list = await this.kube.request('GET', withQuery(resourcePath(kind, this.namespace), { labelSelector }));
    return Array.isArray(list.items) ? (list.items as RawObject[]) : [];
  }

  /** Ready addresses of the client Service, from its EndpointSlices (the discovery.k8s.io API). */
  async clientEndpoints(): Promise<string[]> {
    const path = withQuery(`/apis/discovery.k8s.io/v1/namespaces/${this.namespace}/endpointslices`, { labelSelector: `kubernetes.io/service-name=${this.name}` });
    const list = await this.kube.request('GET', path);
    const slices = Array.isArray(list.items) ? (list.items as { endpoints?: { addresses?: string[]; conditions?: { ready?: boolean } }[] }[]) : [];
    return slices.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses ?? []).sort();
  }

  async authToken(): Promise<string> {
    const secret = await this.get('Secret', `${this.name}-credentials`);
    const encoded = (secret?.data as Record<string, string> | undefined)?.['auth-token'];
    if (encoded === undefined) throw new Error('no auth-token in the credentials Secret');
    return Buffer.from(encoded, 'base64').toString('utf8');
  }

  close(): void {
    this.kube.close();
  }
}

/** A node's HTTP API at a pod IP with the cluster's bearer token. */
export class NodeApi {
  constructor(private readonly token: string) {}

  private async call(ip: string, method: string, path: string, body?: string): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'text/plain';
    return fetch(`http://${ip}:8080${path}`, { method, headers, body, signal: AbortSignal.timeout(5_000) });
  }

  async put(ip: string, key: string, value: string): Promise<void> {
    const response = await this.call(ip, 'PUT', `/v1/buckets/test/keys/${encodeURIComponent(key)}`, value);
    if (response.status !== 204) throw new Error(`PUT ${key} via ${ip}: ${response.status} ${await response.text()}`);
  }

  /** The values of a key read with r=all (every replica answered). */
  async get(ip: string, key: string): Promise<string[]> {
    const response = await this.call(ip, 'GET', `/v1/buckets/test/keys/${encodeURIComponent(key)}?r=all`);
    if (response.status === 404) return [];
    if (response.status !== 200 && response.status !== 300) throw new Error(`GET ${key} via ${ip}: ${response.status} ${await response.text()}`);
    const type = response.headers.get('content-type') ?? '';
    if (type.includes('application/json') && response.status === 300) {
      const body = (await response.json()) as { siblings?: { value: string }[] };
      return (body.siblings ?? []).map((s) => Buffer.from(s.value, 'base64').toString('utf8'));
    }
    return [await response.text()];
  }

  async ring(ip: string): Promise<{ members: { id: string; state: string }[]; partitions: { partition: number; owners: string[] }[] }> {
    const response = await this.call(ip, 'GET', '/v1/ring');
    if (response.status !== 200) throw new Error(`GET /v1/ring via ${ip}: ${response.status}`);
    return (await response.json()) as { members: { id: string; state: string }[]; partitions: { partition: number; owners: string[] }[] };
  }

  /** GET /v1/members: the node's own view of the ring and the hints it holds (what the operator reads). */
  async members(ip: string): Promise<{ self: string; members: { id: string; state: string }[]; hintBacklog: number }> {
    const response = await this.call(ip, 'GET', '/v1/members');
    if (response.status !== 200) throw new Error(`GET /v1/members via ${ip}: ${response.status}`);
    return (await response.json()) as { self: string; members: { id: string; state: string }[]; hintBacklog: number };
  }

  async handoff(ip: string): Promise<{ transfers: { state: string }[] }> {
    const response = await this.call(ip, 'GET', '/v1/handoff');
    if (response.status !== 200) throw new Error(`GET /v1/handoff via ${ip}: ${response.status}`);
    return (await response.json()) as { transfers: { state: string }[] };
  }
}
