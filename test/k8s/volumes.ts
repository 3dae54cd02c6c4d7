/**
 * Volumes for the test kubelet, all plain local directories.
 *
 * - persistentVolumeClaim (and generic ephemeral volumes, whose claim is <pod>-<volume>): when the
 *   kubelet binds a pod (it is the scheduler too) it provisions every Pending claim the pod uses
 *   like an external provisioner would: a hostPath PersistentVolume `pvc-<claim uid>` of the
 *   claim's class, size and access modes, pre-bound to the claim through claimRef, reclaim policy
 *   Delete. The real PV binder in kube-controller-manager then binds the two, and the pod's
 *   containers start only once the claim is Bound. The directory is <workDir>/volumes/pvc-<claim
 *   uid>, so a pod recreated with the same claim (a StatefulSet pod after a delete or a scale down
 *   and up) finds its data again; a claim deleted and created anew gets a fresh one. Volumes bound
 *   to any other hostPath or local PV use that PV's path.
 * - Released PVs this kubelet provisioned are deleted, with their directories, by the reclaimer
 *   (the binder leaves them to their external provisioner, which is us).
 * - emptyDir: <workDir>/pods/<pod uid>/volumes/<name>, removed with the pod.
 * - configMap, secret, downwardAPI and projected (configMap, secret, downwardAPI, service account
 *   token): files written into the per-pod directory when the pod starts, not refreshed later.
 * - hostPath: the path itself. Anything else: an empty per-pod directory, and a log line.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';

import type { V1KeyToPath, V1PersistentVolume, V1PersistentVolumeClaim, V1Pod, V1Volume } from '@kubernetes/client-node';

import { describeError, isNotFound, type KubeApis } from './kubeApi';
import { fieldRefValue, resourceFieldValue, type ConfigSources, type PodFacts } from './podSpec';

export const PROVISIONER = 'dynamokv.io/test-kubelet';
export const NODE_LABEL = 'dynamokv.io/test-kubelet-node';
const RECLAIM_BATCH_MAX = 50;

export interface VolumeContext {
  readonly apis: KubeApis;
  readonly nodeName: string;
  readonly workDir: string;
  log(line: string): void;
}

/** The claims a pod uses: persistentVolumeClaim volumes and generic ephemeral volumes. */
export function claimNames(pod: V1Pod): string[] {
  const names: string[] = [];
  for (const volume of pod.spec?.volumes ?? []) {
    if (volume.persistentVolumeClaim !== undefined) names.push(volume.persistentVolumeClaim.claimName);
    else if (volume.ephemeral !== undefined) names.push(`${pod.metadata?.name ?? ''}-${volume.name}`);
  }
  return names;
}

/**
 * Scheduler side: provisions a PV for every Pending claim of the pod. Returns undefined when every
 * claim exists and is Bound or provisioned, else why the pod must wait.
 */
export async function provisionClaims(ctx: VolumeContext, pod: V1Pod): Promise<string | undefined> {
  const namespace = pod.metadata?.namespace ?? 'default';
  for (const name of claimNames(pod)) {
    let claim: V1PersistentVolumeClaim;
    try {
      claim = await ctx.apis.core.readNamespacedPersistentVolumeClaim({ name, namespace });
    } catch (error) {
      if (isNotFound(error)) return `persistentvolumeclaim "${name}" not found`;
      throw error;
    }
    if (claim.metadata?.deletionTimestamp !== undefined) return `persistentvolumeclaim "${name}" is being deleted`;
    if ((claim.spec?.volumeName ?? '') !== '') continue;
    await createVolumeFor(ctx, claim);
  }
  return undefined;
}

async function createVolumeFor(ctx: VolumeContext, claim: V1PersistentVolumeClaim): Promise<void> {
  const uid = claim.metadata?.uid ?? '';
  const name = `pvc-${uid}`;
  const volume: V1PersistentVolume = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name, labels: { [NODE_LABEL]: ctx.nodeName }, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER } },
    spec: {
      capacity: { storage: claim.spec?.resources?.requests?.storage ?? '1Gi' },
      accessModes: claim.spec?.accessModes ?? ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: claim.spec?.storageClassName ?? '',
      volumeMode: claim.spec?.volumeMode ?? 'Filesystem',
      hostPath: { path: join(ctx.workDir, 'volumes', name), type: 'DirectoryOrCreate' },
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: claim.metadata?.namespace, name: claim.metadata?.name, uid },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [ctx.nodeName] }] }] } },
    },
  };
  try {
    await ctx.apis.core.createPersistentVolume({ body: volume });
    ctx.log(`provisioned persistentvolume ${name} for claim ${claim.metadata?.namespace}/${claim.metadata?.name}`);
  } catch (error) {
    // 409: provisioned on an earlier attempt; the binder will finish the binding.
    if ((error as { code?: number }).code !== 409) throw error;
  }
}

export type PreparedVolumes = { ok: true; dirs: Map<string, string> } | { ok: false; reason: string; message: string };

/** Kubelet side: the local directory of every volume of the pod, materialized. */
export async function prepareVolumes(ctx: VolumeContext, pod: V1Pod, podDir: string, sources: ConfigSources, facts: PodFacts, nodeCapacity: Readonly<Record<string, string>>): Promise<PreparedVolumes> {
  const dirs = new Map<string, string>();
  for (const volume of pod.spec?.volumes ?? []) {
    const local = join(podDir, 'volumes', volume.name);
    if (volume.persistentVolumeClaim !== undefined || volume.ephemeral !== undefined) {
      const claimName = volume.persistentVolumeClaim?.claimName ?? `${pod.metadata?.name ?? ''}-${volume.name}`;
      const path = await claimDirectory(ctx, pod.metadata?.namespace ?? 'default', claimName);
      if (typeof path !== 'string') return { ok: false, reason: 'ContainerCreating', message: path.waiting };
      mkdirSync(path, { recursive: true });
      dirs.set(volume.name, path);
    } else if (volume.hostPath !== undefined) {
      if ((volume.hostPath.type ?? '') === 'DirectoryOrCreate') mkdirSync(volume.hostPath.path, { recursive: true });
      dirs.set(volume.name, volume.hostPath.path);
    } else {
      mkdirSync(local, { recursive: true });
      const problem = await writeVolumeFiles(ctx, pod, volume, local, sources, facts, nodeCapacity);
      if (problem !== undefined) return { ok: false, reason: 'ContainerCreating', message: `volume "${volume.name}": ${problem}` };
      dirs.set(volume.name, local);
    }
  }
  return { ok: true, dirs };
}

async function claimDirectory(ctx: VolumeContext, namespace: string, name: string): Promise<string | { waiting: string }> {
  let claim: V1PersistentVolumeClaim;
  try {
    claim = await ctx.apis.core.readNamespacedPersistentVolumeClaim({ name, namespace });
  } catch (error) {
    if (isNotFound(error)) return { waiting: `persistentvolumeclaim "${name}" not found` };
    throw error;
  }
  const volumeName = claim.spec?.volumeName ?? '';
  if (claim.status?.phase !== 'Bound' || volumeName === '') return { waiting: `waiting for persistentvolumeclaim "${name}" to be bound` };
  const volume = await ctx.apis.core.readPersistentVolume({ name: volumeName });
  const path = volume.spec?.hostPath?.path ?? volume.spec?.local?.path;
  return path ?? { waiting: `persistentvolume "${volumeName}" is neither hostPath nor local` };
}

/** Writes configMap/secret/downwardAPI/projected files; returns a problem that blocks the pod. */
async function writeVolumeFiles(ctx: VolumeContext, pod: V1Pod, volume: V1Volume, dir: string, sources: ConfigSources, facts: PodFacts, nodeCapacity: Readonly<Record<string, string>>): Promise<string | undefined> {
  if (volume.emptyDir !== undefined) return undefined;
  if (volume.configMap !== undefined || volume.secret !== undefined) {
    const isMap = volume.configMap !== undefined;
    const name = (isMap ? volume.configMap?.name : volume.secret?.secretName) ?? '';
    const data = isMap ? sources.configMap(name) : sources.secret(name);
    const optional = (isMap ? volume.configMap?.optional : volume.secret?.optional) === true;
    const mode = (isMap ? volume.configMap?.defaultMode : volume.secret?.defaultMode) ?? 0o644;
    if (data === undefined) return optional ? undefined : `${isMap ? 'configmap' : 'secret'} "${name}" not found`;
    return writeKeys(dir, data, isMap ? volume.configMap?.items : volume.secret?.items, mode);
  }
  if (volume.downwardAPI !== undefined) {
    for (const item of volume.downwardAPI.items ?? []) writeDownward(dir, pod, item, facts, nodeCapacity, volume.downwardAPI.defaultMode ?? 0o644);
    return undefined;
  }
  if (volume.projected !== undefined) {
    const mode = volume.projected.defaultMode ?? 0o644;
    for (const source of volume.projected.sources ?? []) {
      if (source.configMap !== undefined || source.secret !== undefined) {
        const isMap = source.configMap !== undefined;
        const name = (isMap ? source.configMap?.name : source.secret?.name) ?? '';
        const data = isMap ? sources.configMap(name) : sources.secret(name);
        if (data === undefined) {
          if ((isMap ? source.configMap?.optional : source.secret?.optional) === true) continue;
          return `${isMap ? 'configmap' : 'secret'} "${name}" not found`;
        }
        const problem = writeKeys(dir, data, isMap ? source.configMap?.items : source.secret?.items, mode);
        if (problem !== undefined) return problem;
      } else if (source.downwardAPI !== undefined) {
        for (const item of source.downwardAPI.items ?? []) writeDownward(dir, pod, item, facts, nodeCapacity, mode);
      } else if (source.serviceAccountToken !== undefined) {
        const token = await serviceAccountToken(ctx, pod, source.serviceAccountToken.audience, source.serviceAccountToken.expirationSeconds);
        writeFile(dir, source.serviceAccountToken.path, Buffer.from(token), 0o600);
      }
    }
    return undefined;
  }
  ctx.log(`pod ${pod.metadata?.namespace}/${pod.metadata?.name}: volume "${volume.name}" has a type this kubelet does not support; it is an empty directory`);
  return undefined;
}

function writeKeys(dir: string, data: Readonly<Record<string, Buffer>>, items: V1KeyToPath[] | undefined, mode: number): string | undefined {
  if (items === undefined || items.length === 0) {
    for (const [key, value] of Object.entries(data)) writeFile(dir, key, value, mode);
    return undefined;
  }
  for (const item of items) {
    const value = data[item.key];
    if (value === undefined) return `key "${item.key}" not found`;
    writeFile(dir, item.path, value, item.mode ?? mode);
  }
  return undefined;
}

function writeDownward(dir: string, pod: V1Pod, item: { path: string; mode?: number; fieldRef?: { fieldPath: string }; resourceFieldRef?: { containerName?: string; resource: string; divisor?: unknown } }, facts: PodFacts, nodeCapacity: Readonly<Record<string, string>>, mode: number): void {
  let value = '';
  if (item.fieldRef !== undefined) value = fieldRefValue(pod, item.fieldRef.fieldPath, facts) ?? '';
  else if (item.resourceFieldRef !== undefined) {
    const container = pod.spec?.containers.find((candidate) => candidate.name === item.resourceFieldRef?.containerName);
    value = resourceFieldValue(container?.resources, item.resourceFieldRef.resource, item.resourceFieldRef.divisor === undefined ? undefined : String(item.resourceFieldRef.divisor), nodeCapacity);
  }
  writeFile(dir, item.path, Buffer.from(value), item.mode ?? mode);
}

/** Writes `relative` under `dir`, refusing paths that would leave it. */
function writeFile(dir: string, relative: string, value: Buffer, mode: number): void {
  const path = resolve(dir, relative);
  if (!path.startsWith(resolve(dir) + sep)) throw new Error(`volume file path "${relative}" leaves its volume`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, value);
  chmodSync(path, mode & 0o777);
}

async function serviceAccountToken(ctx: VolumeContext, pod: V1Pod, audience: string | undefined, expirationSeconds: number | undefined): Promise<string> {
  const response = await ctx.apis.core.createNamespacedServiceAccountToken({
    name: pod.spec?.serviceAccountName ?? 'default',
    namespace: pod.metadata?.namespace ?? 'default',
    body: { spec: { audiences: audience === undefined ? [] : [audience], expirationSeconds: expirationSeconds ?? 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name, uid: pod.metadata?.uid } } },
  });
  return response.status?.token ?? '';
}

/** Fetches every ConfigMap and Secret the pod refers to; missing ones are absent from the result. */
export async function fetchConfigSources(ctx: VolumeContext, namespace: string, names: { configMaps: Set<string>; secrets: Set<string> }): Promise<ConfigSources> {
  const configMaps = new Map<string, Record<string, Buffer>>();
  const secrets = new Map<string, Record<string, Buffer>>();
  for (const name of names.configMaps) {
    try {
      const map = await ctx.apis.core.readNamespacedConfigMap({ name, namespace });
      const data: Record<string, Buffer> = {};
      for (const [key, value] of Object.entries(map.data ?? {})) data[key] = Buffer.from(value, 'utf8');
      for (const [key, value] of Object.entries(map.binaryData ?? {})) data[key] = Buffer.from(value, 'base64');
      configMaps.set(name, data);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  for (const name of names.secrets) {
    try {
      const secret = await ctx.apis.core.readNamespacedSecret({ name, namespace });
      const data: Record<string, Buffer> = {};
      for (const [key, value] of Object.entries(secret.data ?? {})) data[key] = Buffer.from(value, 'base64');
      secrets.set(name, data);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  return { configMap: (name) => configMaps.get(name), secret: (name) => secrets.get(name) };
}

/**
 * Deletes Released PVs this kubelet provisioned (reclaim policy Delete) and their directories; only
 * directories under <workDir>/volumes are ever removed.
 */
export async function reclaimReleasedVolumes(ctx: VolumeContext): Promise<void> {
  const list = await ctx.apis.core.listPersistentVolume({ labelSelector: `${NODE_LABEL}=${ctx.nodeName}` });
  const released = list.items.filter((volume) => volume.status?.phase === 'Released' && volume.spec?.persistentVolumeReclaimPolicy === 'Delete' && volume.metadata?.deletionTimestamp === undefined);
  const volumesDir = resolve(ctx.workDir, 'volumes') + sep;
  for (const volume of released.slice(0, RECLAIM_BATCH_MAX)) {
    const name = volume.metadata?.name ?? '';
    try {
      await ctx.apis.core.deletePersistentVolume({ name });
      const path = volume.spec?.hostPath?.path;
      if (path !== undefined && resolve(path).startsWith(volumesDir)) rmSync(path, { recursive: true, force: true });
      ctx.log(`deleted released persistentvolume ${name}`);
    } catch (error) {
      if (!isNotFound(error)) ctx.log(`deleting released persistentvolume ${name} failed: ${describeError(error)}`);
    }
  }
}
