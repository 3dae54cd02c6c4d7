/**
 * Partition-aware routing for the load generator, with the client library's own code
 * (client/src/routing.ts), so the benchmark measures what DynamoClient does rather than a copy.
 *
 * The load generator runs one autocannon instance per node, each with a fixed share of the
 * connections, so it cannot pick a node per request. It routes by choosing keys instead: the
 * instance aimed at node X draws its keys from those X is a primary replica of. Every key is in
 * the lists of all its primaries, and ownership is balanced (each node holds Q*N/nodes slots
 * within one), so keys are still drawn about uniformly overall, and each request reaches a
 * replica, as the client's rotation over a key's primaries does.
 */
import { decodeRing } from '../../client/src/admin';
import { normaliseEndpoint } from '../../client/src/transport';
import { primaryEndpoints, routingRingOf } from '../../client/src/routing';
import { keyName } from './load';

export type LoadRouting = 'any' | 'partition-aware';

const RING_TIMEOUT_MS = 5_000;

/**
 * For each of `baseUrls`, the indices of the keys (0..keys-1, named by keyName) that node is a
 * primary replica of, by the ring GET /v1/ring answers at the first URL.
 */
export async function keysByReplica(baseUrls: readonly string[], bucket: string, keys: number): Promise<number[][]> {
  const first = baseUrls[0];
  if (first === undefined) throw new Error('keysByReplica needs at least one base URL');
  const response = await fetch(`${first}/v1/ring`, { signal: AbortSignal.timeout(RING_TIMEOUT_MS) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /v1/ring at ${first} answered ${response.status}: ${text.slice(0, 200)}`);
  const ring = routingRingOf(decodeRing(text, first));
  if (ring === undefined) throw new Error(`the ring at ${first} has no partition owners to route by`);
  const indexOf = new Map(baseUrls.map((url, index) => [normaliseEndpoint(url), index]));
  const lists: number[][] = baseUrls.map(() => []);
  for (let key = 0; key < keys; key++) {
    for (const url of primaryEndpoints(ring, bucket, keyName(key))) {
      const index = indexOf.get(url);
      if (index !== undefined) lists[index]!.push(key);
    }
  }
  const empty = lists.findIndex((list) => list.length === 0);
  if (empty >= 0) throw new Error(`${baseUrls[empty]} is a primary of none of the ${keys} keys; cannot route its connections`);
  return lists;
}
