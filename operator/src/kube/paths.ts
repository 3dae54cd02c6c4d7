/**
 * REST paths of the resources the operator touches. A fixed table rather than discovery: the
 * operator's RBAC names exactly these resources, so there is nothing else to find.
 */
import { API_GROUP, API_VERSION, PLURAL } from '../core/types';

export interface ResourceType {
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
}

export const RESOURCES = {
  DynamoCluster: { group: API_GROUP, version: API_VERSION, plural: PLURAL },
  StatefulSet: { group: 'apps', version: 'v1', plural: 'statefulsets' },
  Pod: { group: '', version: 'v1', plural: 'pods' },
  Service: { group: '', version: 'v1', plural: 'services' },
  ConfigMap: { group: '', version: 'v1', plural: 'configmaps' },
  Secret: { group: '', version: 'v1', plural: 'secrets' },
  PersistentVolumeClaim: { group: '', version: 'v1', plural: 'persistentvolumeclaims' },
  PodDisruptionBudget: { group: 'policy', version: 'v1', plural: 'poddisruptionbudgets' },
  ServiceMonitor: { group: 'monitoring.coreos.com', version: 'v1', plural: 'servicemonitors' },
  Event: { group: '', version: 'v1', plural: 'events' },
  Lease: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' },
} as const satisfies Record<string, ResourceType>;

export type Kind = keyof typeof RESOURCES;

export function isKind(kind: string): kind is Kind {
  return Object.prototype.hasOwnProperty.call(RESOURCES, kind);
}

/** /api/v1/namespaces/ns/pods/name, /apis/apps/v1/statefulsets (all namespaces), ... */
export function resourcePath(kind: Kind, namespace?: string, name?: string, subresource?: string): string {
  const type: ResourceType = RESOURCES[kind];
  const base = type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  const scope = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  const object = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  const sub = subresource === undefined ? '' : `/${subresource}`;
  return `${base}${scope}/${type.plural}${object}${sub}`;
}

export function withQuery(path: string, query: Record<string, string | number | boolean | undefined>): string {
  const parts = Object.entries(query)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  if (parts.length === 0) return path;
  return `${path}${path.includes('?') ? '&' : '?'}${parts.join('&')}`;
}
