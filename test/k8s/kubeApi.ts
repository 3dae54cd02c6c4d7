/**
 * The test kubelet's connection to the apiserver through @kubernetes/client-node. The package is
 * ESM-only, so it is loaded with a dynamic import (CommonJS code cannot `import` it statically);
 * jest needs NODE_OPTIONS=--experimental-vm-modules for that, plain Node 24 does not.
 */
import type * as ClientNodeTypes from '@kubernetes/client-node';

export type ClientNode = typeof ClientNodeTypes;

let loading: Promise<ClientNode> | undefined;

export function loadClientNode(): Promise<ClientNode> {
  loading ??= import('@kubernetes/client-node');
  return loading;
}

export interface KubeApis {
  readonly k8s: ClientNode;
  readonly config: ClientNodeTypes.KubeConfig;
  readonly core: ClientNodeTypes.CoreV1Api;
  readonly coordination: ClientNodeTypes.CoordinationV1Api;
  /** Request options that send a patch as a strategic merge patch (the generated default is JSON patch). */
  readonly strategicMerge: ClientNodeTypes.ConfigurationOptions;
  /** Request options that send a patch as a JSON merge patch. */
  readonly mergePatch: ClientNodeTypes.ConfigurationOptions;
}

export async function connect(kubeconfigPath: string): Promise<KubeApis> {
  const k8s = await loadClientNode();
  const config = new k8s.KubeConfig();
  config.loadFromFile(kubeconfigPath);
  return {
    k8s,
    config,
    core: config.makeApiClient(k8s.CoreV1Api),
    coordination: config.makeApiClient(k8s.CoordinationV1Api),
    strategicMerge: k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    mergePatch: k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  };
}

/** The HTTP status of a failed API call (client-node's ApiException.code), or undefined. */
export function statusCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown; statusCode?: unknown }).code ?? (error as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (error: unknown): boolean => statusCode(error) === 404;
export const isConflict = (error: unknown): boolean => statusCode(error) === 409;

/** A short description of a failed call, without the response headers client-node puts in the message. */
export function describeError(error: unknown): string {
  const code = statusCode(error);
  const body = (error as { body?: unknown } | null)?.body;
  if (code !== undefined) {
    let message = '';
    if (typeof body === 'string') {
      try {
        message = String((JSON.parse(body) as { message?: unknown }).message ?? body);
      } catch {
        message = body;
      }
    } else if (typeof body === 'object' && body !== null) message = String((body as { message?: unknown }).message ?? '');
    return `HTTP ${code}${message === '' ? '' : `: ${message.slice(0, 500)}`}`;
  }
  return error instanceof Error ? error.message : String(error);
}
