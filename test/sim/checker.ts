/**
 * The acknowledged-write checker, in the manner of Jepsen's set test, run after heal and
 * quiescence. For every key the workload touched:
 * - converged: every primary replica stores an equal object (core equalObjects) after a final
 *   read-repair pass;
 * - no loss: every durably acknowledged element is in the final value, unless a write with a
 *   context saw it and legitimately dropped it (excused), or the sibling cap dropped siblings and
 *   said so (counted drops);
 * - nothing unexpected: every element in the final value was written by some client, and every
 *   value is a JSON array of strings;
 * - bounded siblings: no stored object anywhere holds more than maxSiblings siblings.
 * Acknowledged writes with dw=0 may be lost only when a crash happened; they are counted apart.
 */
import { assertWellFormed, equalObjects } from '../../node/src/core/dvv';
import { partitionOf, preferenceList } from '../../node/src/core/partition';
import { activeMembers } from '../../node/src/core/ring';
import type { VersionedObject } from '../../node/src/core/version';
import { dataKey, decodeDataKey, KEY_KIND } from '../../node/src/storage/keys';
import { decodeObject } from '../../node/src/storage/objectCodec';
import type { SimCluster } from './simCluster';
import { BUCKET, describe, elementsOf, parseValue, type History } from './workload';

export interface CheckStats {
  keys: number;
  attempted: number;
  acknowledged: number;
  lost: number;
  lostToSiblingCap: number;
  lostVolatile: number;
  unexpected: number;
  siblingsMax: number;
}

export interface CheckResult {
  readonly violations: string[];
  readonly stats: CheckStats;
}

const DATA_SPACE = { gte: Uint8Array.of(KEY_KIND.data), lt: Uint8Array.of(KEY_KIND.data + 1) };
const VIOLATIONS_LISTED_MAX = 20;

export async function checkCluster(cluster: SimCluster, history: History, keys: readonly string[]): Promise<CheckResult> {
  const violations: string[] = [];
  const stats: CheckStats = { keys: keys.length, attempted: 0, acknowledged: 0, lost: 0, lostToSiblingCap: 0, lostVolatile: 0, unexpected: 0, siblingsMax: 0 };
  const report = (text: string) => {
    if (violations.length < VIOLATIONS_LISTED_MAX) violations.push(text);
  };
  const known = new Set(keys);
  await checkEveryStoredObject(cluster, known, stats, report);

  const ring = cluster.settledRing();
  const members = activeMembers(ring).map((m) => m.id);
  const crashed = cluster.counters.crashes > 0;
  for (const key of keys) {
    const partition = partitionOf(BUCKET, key, ring.partitionCount);
    const primaries = preferenceList(ring.plan, partition, members).primaries;
    const objects: (VersionedObject | undefined)[] = [];
    for (const id of primaries) objects.push(await readStored(cluster, id, partition, key));
    const first = objects[0];
    for (let i = 1; i < objects.length; i++) {
      const other = objects[i];
      const same = first === undefined || other === undefined ? first === other : equalObjects(first, other);
      if (!same) report(`key ${key}: replicas ${primaries[0]} and ${primaries[i]} did not converge: ${describe(first)} vs ${describe(other)}`);
    }
    const final = new Set(objects.flatMap((o) => elementsOf(o)));
    const h = history.key(key);
    stats.attempted += h.attempted.size;
    stats.acknowledged += h.acked.size + h.ackedVolatile.size;
    for (const element of final) {
      if (!h.attempted.has(element)) {
        stats.unexpected++;
        report(`key ${key}: element ${element} appeared but no client wrote it`);
      }
    }
    for (const element of h.acked) {
      if (final.has(element) || h.excused.has(element)) continue;
      if (cluster.counters.siblingsDropped > 0) stats.lostToSiblingCap++;
      else {
        stats.lost++;
        report(`key ${key}: acknowledged element ${element} is lost (final ${describe(first)} on primaries ${primaries.join(',')}; every node: ${await holdings(cluster, partition, key)})`);
      }
    }
    for (const element of h.ackedVolatile) {
      if (final.has(element) || h.excused.has(element)) continue;
      if (crashed || cluster.counters.siblingsDropped > 0) stats.lostVolatile++;
      else {
        stats.lost++;
        report(`key ${key}: acknowledged (dw=0) element ${element} is lost with no crash in the run`);
      }
    }
  }
  return { violations, stats };
}

/** Every object on every node: decodable, well formed, a known key, within the sibling cap. */
async function checkEveryStoredObject(cluster: SimCluster, known: ReadonlySet<string>, stats: CheckStats, report: (text: string) => void): Promise<void> {
  const maxSiblings = cluster.options.maxSiblings;
  for (const slot of cluster.nodes) {
    for await (const [rawKey, bytes] of slot.disk.view().scan(DATA_SPACE)) {
      const { bucket, key } = decodeDataKey(rawKey);
      if (bucket !== BUCKET || !known.has(key)) report(`${slot.id}: stores key ${bucket}/${key} that no client wrote`);
      let object: VersionedObject;
      try {
        object = decodeObject(bytes);
        assertWellFormed(object);
      } catch (error) {
        report(`${slot.id}: object ${key} is malformed: ${(error as Error).message}`);
        continue;
      }
      stats.siblingsMax = Math.max(stats.siblingsMax, object.siblings.length);
      if (object.siblings.length > maxSiblings) report(`${slot.id}: ${key} holds ${object.siblings.length} siblings, more than the cap ${maxSiblings}`);
      for (const sibling of object.siblings) {
        if (!sibling.deleted && parseValue(sibling.value) === undefined) report(`${slot.id}: ${key} holds a value no client wrote`);
      }
    }
  }
}

async function readStored(cluster: SimCluster, id: string, partition: number, key: string): Promise<VersionedObject | undefined> {
  const bytes = await cluster.slot(id).disk.view().get(dataKey(partition, BUCKET, key));
  return bytes === undefined ? undefined : decodeObject(bytes);
}


/** What every node stores for a key, for violation messages (where did the write go?). */
async function holdings(cluster: SimCluster, partition: number, key: string): Promise<string> {
  const parts: string[] = [];
  for (const slot of cluster.nodes) parts.push(`${slot.id}(${slot.role})=${describe(await readStored(cluster, slot.id, partition, key))}`);
  return parts.join(' ');
}
