/**
 * Pure pieces of the test kubelet: which local command runs an image, Kubernetes' $(VAR)
 * expansion, environment variables from a container spec, downward API field values, and the
 * mount path rewriting rule.
 *
 * The mount path rule: a container process runs on this machine, not in a mount namespace, so a
 * container that expects its volume at /var/lib/dynamokv cannot find it there. Instead, every
 * occurrence of a volumeMount's mountPath in the container's command, args, env values and
 * workingDir is replaced by the local directory backing that volume (subPath appended). An
 * occurrence counts only as a whole path prefix: "/data" is rewritten in "/data", "/data/x" and
 * "--dir=/data", but not in "/database" or "/srv/data". Longer mount paths win over shorter ones
 * (a mount at /data/logs inside one at /data), and each occurrence is rewritten once.
 */
import type { V1Container, V1EnvVar, V1Pod, V1ResourceRequirements } from '@kubernetes/client-node';

/** Maps a container to the local process that plays it. */
export type ImageCommand = (container: V1Container, pod: V1Pod) => { command: string; args: string[]; env?: Record<string, string> };

/**
 * The command for `image`: the exact name first, then the name without its tag or digest
 * ('dynamokv/node:0.1.0' and 'dynamokv/node@sha256:...' both find 'dynamokv/node').
 */
export function findImageCommand(images: Readonly<Record<string, ImageCommand>>, image: string): ImageCommand | undefined {
  if (Object.hasOwn(images, image)) return images[image];
  let name = image.split('@')[0] ?? image;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) name = name.slice(0, colon);
  return Object.hasOwn(images, name) ? images[name] : undefined;
}

/**
 * Kubernetes' expansion of $(VAR) references (k8s.io/kubernetes third_party expansion): a defined
 * variable is replaced by its value, an undefined one is left as written, `$$` is an escaped `$`,
 * and an unterminated `$(` stays as is.
 */
export function expandVariables(input: string, lookup: (name: string) => string | undefined): string {
  let output = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    output += input.slice(checkpoint, cursor);
    const next = input[cursor + 1];
    let advance = 1;
    if (next === '$') {
      output += '$';
    } else if (next === '(') {
      const close = input.indexOf(')', cursor + 2);
      if (close === -1) {
        output += '$(';
      } else {
        const name = input.slice(cursor + 2, close);
        output += lookup(name) ?? `$(${name})`;
        advance = close - cursor;
      }
    } else {
      output += `$${next ?? ''}`;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return output + input.slice(checkpoint);
}

/** What the downward API can tell a pod about itself. */
export interface PodFacts {
  readonly podIp: string;
  readonly hostIp: string;
  readonly nodeName: string;
}

const LABEL_OR_ANNOTATION = /^metadata\.(labels|annotations)\['(.+)'\]$/;

/** The value of a downward API fieldRef, or undefined for a path this kubelet does not know. */
export function fieldRefValue(pod: V1Pod, fieldPath: string, facts: PodFacts): string | undefined {
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? 'default';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? facts.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP':
    case 'status.podIPs':
      return facts.podIp;
    case 'status.hostIP':
    case 'status.hostIPs':
      return facts.hostIp;
    case 'metadata.labels':
    case 'metadata.annotations': {
      const map = fieldPath === 'metadata.labels' ? pod.metadata?.labels : pod.metadata?.annotations;
      return Object.keys(map ?? {})
        .sort()
        .map((key) => `${key}=${JSON.stringify(map?.[key] ?? '')}`)
        .join('\n');
    }
  }
  const match = LABEL_OR_ANNOTATION.exec(fieldPath);
  if (match === null) return undefined;
  const map = match[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
  return map?.[match[2] ?? ''] ?? '';
}

const QUANTITY = /^([+-]?[0-9.]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const SUFFIX_FACTOR: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

/** A Kubernetes quantity ('500m', '1Gi', '2') as a number, or undefined when malformed. */
export function parseQuantity(quantity: string | number | undefined): number | undefined {
  if (typeof quantity === 'number') return quantity;
  if (quantity === undefined) return undefined;
  const match = QUANTITY.exec(quantity.trim());
  if (match === null) return undefined;
  return Number(match[1]) * (match[2] === undefined ? 1 : (SUFFIX_FACTOR[match[2]] ?? 1));
}

/** resourceFieldRef (limits.cpu, requests.memory, ...): the container's value, else the node's capacity for limits. */
export function resourceFieldValue(resources: V1ResourceRequirements | undefined, resource: string, divisor: string | undefined, nodeCapacity: Readonly<Record<string, string>>): string {
  const [kind, name = ''] = resource.split('.', 2) as [string, string?];
  const set = kind === 'limits' ? resources?.limits : resources?.requests;
  const amount = parseQuantity(set?.[name]) ?? (kind === 'limits' ? parseQuantity(nodeCapacity[name]) : 0) ?? 0;
  const unit = parseQuantity(divisor) ?? 1;
  return String(Math.ceil(amount / (unit === 0 ? 1 : unit)));
}

/** ConfigMap and Secret contents the environment and volumes may refer to, already fetched. */
export interface ConfigSources {
  configMap(name: string): Readonly<Record<string, Buffer>> | undefined;
  secret(name: string): Readonly<Record<string, Buffer>> | undefined;
}

const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/**
 * The container's environment as the kubelet builds it: envFrom first, then env in order, each
 * value expanded against the variables defined before it; valueFrom values are not expanded.
 * `problems` lists references that cannot be resolved and are not optional (the container must
 * not start: CreateContainerConfigError).
 */
export function containerEnvironment(container: V1Container, pod: V1Pod, facts: PodFacts, sources: ConfigSources, nodeCapacity: Readonly<Record<string, string>>): { env: Map<string, string>; problems: string[] } {
  const env = new Map<string, string>();
  const problems: string[] = [];
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef ?? source.secretRef;
    if (ref === undefined) continue;
    const kind = source.configMapRef !== undefined ? 'configmap' : 'secret';
    const data = kind === 'configmap' ? sources.configMap(ref.name ?? '') : sources.secret(ref.name ?? '');
    if (data === undefined) {
      if (ref.optional !== true) problems.push(`${kind} "${ref.name ?? ''}" not found`);
      continue;
    }
    for (const key of Object.keys(data).sort()) {
      const name = `${source.prefix ?? ''}${key}`;
      if (ENV_NAME.test(name)) env.set(name, data[key]?.toString('utf8') ?? '');
    }
  }
  for (const variable of container.env ?? []) {
    const value = envVarValue(variable, container, pod, facts, sources, nodeCapacity, env, problems);
    if (value !== undefined) env.set(variable.name, value);
  }
  return { env, problems };
}

function envVarValue(variable: V1EnvVar, container: V1Container, pod: V1Pod, facts: PodFacts, sources: ConfigSources, nodeCapacity: Readonly<Record<string, string>>, defined: Map<string, string>, problems: string[]): string | undefined {
  const from = variable.valueFrom;
  if (from === undefined || (variable.value !== undefined && variable.value !== '')) {
    return expandVariables(variable.value ?? '', (name) => defined.get(name));
  }
  if (from.fieldRef !== undefined) {
    const value = fieldRefValue(pod, from.fieldRef.fieldPath, facts);
    if (value === undefined) problems.push(`env ${variable.name}: unsupported fieldRef ${from.fieldRef.fieldPath}`);
    return value;
  }
  if (from.resourceFieldRef !== undefined) {
    const divisor = from.resourceFieldRef.divisor === undefined ? undefined : String(from.resourceFieldRef.divisor);
    return resourceFieldValue(container.resources, from.resourceFieldRef.resource, divisor, nodeCapacity);
  }
  const ref = from.configMapKeyRef ?? from.secretKeyRef;
  if (ref === undefined) {
    problems.push(`env ${variable.name}: unsupported valueFrom`);
    return undefined;
  }
  const kind = from.configMapKeyRef !== undefined ? 'configmap' : 'secret';
  const data = kind === 'configmap' ? sources.configMap(ref.name ?? '') : sources.secret(ref.name ?? '');
  const value = data?.[ref.key];
  if (value === undefined) {
    if (ref.optional !== true) problems.push(`env ${variable.name}: ${data === undefined ? `${kind} "${ref.name ?? ''}" not found` : `key "${ref.key}" not in ${kind} "${ref.name ?? ''}"`}`);
    return undefined;
  }
  return value.toString('utf8');
}

/** The names of the ConfigMaps and Secrets a pod's containers and volumes refer to. */
export function referencedConfigObjects(pod: V1Pod): { configMaps: Set<string>; secrets: Set<string> } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  const add = (set: Set<string>, name: string | undefined) => name !== undefined && name !== '' && set.add(name);
  for (const container of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    for (const source of container.envFrom ?? []) {
      add(configMaps, source.configMapRef?.name);
      add(secrets, source.secretRef?.name);
    }
    for (const variable of container.env ?? []) {
      add(configMaps, variable.valueFrom?.configMapKeyRef?.name);
      add(secrets, variable.valueFrom?.secretKeyRef?.name);
    }
  }
  for (const volume of pod.spec?.volumes ?? []) {
    add(configMaps, volume.configMap?.name);
    add(secrets, volume.secret?.secretName);
    for (const source of volume.projected?.sources ?? []) {
      add(configMaps, source.configMap?.name);
      add(secrets, source.secret?.name);
    }
  }
  return { configMaps, secrets };
}

const PATH_CHAR = 'A-Za-z0-9._\\-';

/** The rewriting rule of the file header, for the given mounts; identity when there are none. */
export function mountPathRewriter(mounts: ReadonlyArray<{ mountPath: string; localPath: string }>): (text: string) => string {
  const byPath = new Map<string, string>();
  for (const mount of mounts) {
    const mountPath = mount.mountPath.replace(/\/+$/, '');
    if (mountPath !== '' && !byPath.has(mountPath)) byPath.set(mountPath, mount.localPath.replace(/\/+$/, ''));
  }
  if (byPath.size === 0) return (text) => text;
  const alternatives = [...byPath.keys()].sort((a, b) => b.length - a.length).map((path) => path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(`(?<![${PATH_CHAR}/])(?:${alternatives.join('|')})(?![${PATH_CHAR}])`, 'g');
  return (text) => text.replace(pattern, (path) => byPath.get(path) ?? path);
}
