/**
 * Cluster routes on the client port: the ring and members as this node sees them, bucket
 * properties, and the admin operations join and leave. Bodies are JSON.
 *
 * Errors: a body that is not a JSON object is REQUEST_INVALID; a field with a bad value is
 * PARAMETER_INVALID; a change the ring refuses (already a member, the last member leaving) is
 * MEMBERSHIP_CONFLICT; a seed or claimant that cannot be reached is QUORUM_UNAVAILABLE (503 with
 * Retry-After: the change needs that node, and it may come back).
 *
 * One membership change runs at a time. A join or leave that arrives while another change is
 * pending is refused at once with MEMBERSHIP_CONFLICT and Retry-After (the one conflict that
 * clears by itself), unless the caller asks to wait with `?waitMs=` (at most 300 s): callers such
 * as the operator drive one change at a time and treat that answer as "retry later". A change
 * that cannot finish (a sender or receiver gone for good) is dropped with POST /v1/admin/abort.
 */
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { activeMembers, claimant, type BucketProps, type RingState } from '../core/ring';
import { isChangePendingMessage } from '../core/transition';
import type { ConflictMode } from '../core/version';
import { CHANGE_WAIT_MS_MAX, type Membership } from '../cluster/membership';
import { DynamoError } from './errors';
import { jsonBody, type PathMethods } from './reply';
import { translateClusterErrors } from './clusterKeyValueService';

export interface ClusterRouteDeps {
  readonly membership: Membership;
  /** Hints waiting for delivery on this node. */
  readonly hintBacklog: () => number;
  readonly validateBucket: (bucket: string) => void;
  /** Pending transfers with this node's progress (cluster/handoff.ts); absent: the ring's list only. */
  readonly transfers?: () => readonly object[];
  /** The seed a join without a body uses (the node's first configured seed). */
  readonly defaultSeed?: string;
  /**
   * Run before body parsing on every cluster route (the app's stopping, overload and bearer
   * guards), so admin routes are never less protected than key routes.
   */
  readonly guards?: readonly onRequestHookHandler[];
}

/**
 * Every answer of the client port names the ring version this node holds. A partition-aware
 * client compares it with the ring it routes by and fetches GET /v1/ring when it is behind, so
 * it learns of membership changes without polling.
 */
export const RING_VERSION_HEADER = 'x-dynamo-ring-version';

/** Longest seed address accepted; a host name is at most 253 characters, plus scheme and port. */
const SEED_CHARS_MAX = 1024;
const BUCKET_PROPERTIES = ['r', 'w', 'dw', 'conflictMode'] as const;
const CONFLICT_MODES: readonly ConflictMode[] = ['siblings', 'lww'];
/** Retry-After of a join or leave refused because another membership change is still streaming. */
export const CHANGE_PENDING_RETRY_AFTER_SECONDS = 2;

/** `?waitMs=` of join and leave: how long to wait for a pending change, 0 (default) to 300000. */
export function parseWaitMs(query: unknown): number {
  const text = typeof query === 'object' && query !== null ? (query as Record<string, unknown>).waitMs : undefined;
  if (text === undefined) return 0;
  if (typeof text !== 'string' || !/^[0-9]{1,7}$/.test(text) || Number(text) > CHANGE_WAIT_MS_MAX) {
    throw new DynamoError('PARAMETER_INVALID', `waitMs must be an integer from 0 to ${CHANGE_WAIT_MS_MAX}.`);
  }
  return Number(text);
}

/** Runs a join or leave; a refusal because another change is pending carries Retry-After. */
async function membershipChange<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await translateClusterErrors(operation);
  } catch (error) {
    if (error instanceof DynamoError && error.code === 'MEMBERSHIP_CONFLICT' && isChangePendingMessage(error.message)) {
      throw new DynamoError('MEMBERSHIP_CONFLICT', error.message, { 'retry-after': String(CHANGE_PENDING_RETRY_AFTER_SECONDS) });
    }
    throw error;
  }
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}

/** Accepts "host:port" or a full http(s) URL for a seed's peer endpoint; answers its base URL. */
export function normalizePeerAddress(text: unknown): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > SEED_CHARS_MAX) {
    throw new DynamoError('PARAMETER_INVALID', 'seed must be "host:peerPort" or an http URL of a peer port.');
  }
  const candidate = /^https?:\/\//.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    throw new DynamoError('PARAMETER_INVALID', 'seed is not a valid "host:peerPort" address.');
  }
  if (url.port === '' || url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new DynamoError('PARAMETER_INVALID', 'seed must name a host and a port, nothing else.');
  }
  return `${url.protocol}//${url.host}`;
}

/**
 * Bucket properties from a PUT body. Values are stored as numbers (one/quorum/all resolve per
 * request) and must be possible with N: r and w in 1..N, dw in 0..N and at most w.
 */
export function parseBucketProps(body: unknown, replicationFactor: number): BucketProps {
  const fields = objectBody(body);
  for (const name of Object.keys(fields)) {
    if (!(BUCKET_PROPERTIES as readonly string[]).includes(name)) throw new DynamoError('PARAMETER_INVALID', `Unknown bucket property "${truncate(name)}"; known: ${BUCKET_PROPERTIES.join(', ')}.`);
  }
  const props: { r?: number; w?: number; dw?: number; conflictMode?: ConflictMode } = {};
  for (const name of ['r', 'w', 'dw'] as const) {
    const value = fields[name];
    if (value === undefined) continue;
    const min = name === 'dw' ? 0 : 1;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > replicationFactor) {
      throw new DynamoError('PARAMETER_INVALID', `${name} must be an integer from ${min} to N=${replicationFactor} (one/quorum/all are per-request values).`);
    }
    props[name] = value;
  }
  if (props.dw !== undefined && props.w !== undefined && props.dw > props.w) throw new DynamoError('PARAMETER_INVALID', `dw=${props.dw} must not exceed w=${props.w}.`);
  if (fields.conflictMode !== undefined) {
    const mode = CONFLICT_MODES.find((m) => m === fields.conflictMode);
    if (mode === undefined) throw new DynamoError('PARAMETER_INVALID', 'conflictMode must be "siblings" or "lww".');
    props.conflictMode = mode;
  }
  return props;
}

function objectBody(body: unknown): Record<string, unknown> {
  const parsed = jsonBody(body);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new DynamoError('REQUEST_INVALID', 'The body must be a JSON object.');
  return parsed as Record<string, unknown>;
}

/** An optional JSON object body: an empty body means {}. */
function optionalObjectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || (body instanceof Uint8Array && body.length === 0)) return {};
  return objectBody(body);
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}

/** GET /v1/buckets/{bucket}/props shows the conflict mode even when it is the default. */
function propsView(ring: RingState, bucket: string) {
  return { bucket, props: { conflictMode: 'siblings', ...(ring.buckets[bucket] ?? {}) } };
}

export function registerClusterRoutes(app: FastifyInstance, deps: ClusterRouteDeps): PathMethods[] {
  const { membership } = deps;
  const onRequest = [...(deps.guards ?? [])];

  // An app-wide hook (registered on the root instance, so it covers the key routes too). The
  // header text is cached per ring version: this runs on every request.
  let announced = { version: -1, text: '' };
  app.addHook('onRequest', (_request, reply, done) => {
    const version = membership.ring().version;
    if (version !== announced.version) announced = { version, text: String(version) };
    reply.header(RING_VERSION_HEADER, announced.text);
    done();
  });

  /**
   * The pending membership change: who joins or leaves, the partitions whose owners change (with
   * their next owners), and the transfers, with progress for those this node sends or receives.
   */
  const pendingView = (ring: RingState) => {
    const pending = ring.pending;
    if (pending === undefined) return null;
    const partitions = ring.plan.owners.flatMap((owners, partition) => {
      const next = pending.plan.owners[partition] ?? [];
      return sameMembers(owners, next) ? [] : [{ partition, owners: next }];
    });
    return {
      joining: ring.members.filter((m) => m.state === 'joining').map((m) => m.id),
      leaving: ring.members.filter((m) => m.state === 'leaving').map((m) => m.id),
      transfersTotal: pending.transfers.length,
      transfersDone: pending.transfers.filter((t) => t.state === 'done').length,
      partitions,
      transfers: deps.transfers?.() ?? pending.transfers,
    };
  };

  const ringView = () => {
    const ring = membership.ring();
    return {
      clusterId: ring.clusterId,
      version: ring.version,
      partitionCount: ring.partitionCount,
      replicationFactor: ring.replicationFactor,
      claimant: claimant(ring) ?? null,
      members: membership.members(),
      activeMembers: activeMembers(ring).length,
      partitions: ring.plan.owners.map((owners, partition) => ({ partition, owners })),
      pending: pendingView(ring),
    };
  };

  app.get('/v1/ring', { onRequest }, async () => ringView());

  app.get('/v1/handoff', { onRequest }, async () => ({
    ringVersion: membership.ring().version,
    transfers: deps.transfers?.() ?? membership.ring().pending?.transfers ?? [],
  }));

  app.get('/v1/members', { onRequest }, async () => ({
    self: membership.selfId,
    ringVersion: membership.ring().version,
    members: membership.members(),
    hintBacklog: deps.hintBacklog(),
  }));

  app.post('/v1/admin/join', { onRequest }, async (request) => {
    const body = optionalObjectBody(request.body);
    // Only an absent field falls back: an explicit null is a bad value, not "use the default".
    if (body.seed === undefined && deps.defaultSeed === undefined) throw new DynamoError('PARAMETER_INVALID', 'No seed given and this node has no configured seed: send {"seed": "host:peerPort"}.');
    const seed = normalizePeerAddress(body.seed === undefined ? deps.defaultSeed : body.seed);
    const waitMs = parseWaitMs(request.query);
    await membershipChange(() => membership.join(seed, { waitMs }));
    return ringView();
  });

  // The founding node of a new cluster (the operator's ordinal 0): admitted with its own ring.
  app.post('/v1/admin/init', { onRequest }, async () => {
    await translateClusterErrors(() => membership.init());
    return ringView();
  });

  app.post('/v1/admin/leave', { onRequest }, async (request) => {
    const body = optionalObjectBody(request.body);
    // As for join: {"node": null} must not silently mean "this node leaves".
    const node = body.node === undefined ? membership.selfId : body.node;
    if (typeof node !== 'string' || node.length === 0) throw new DynamoError('PARAMETER_INVALID', 'node must be the id of a member.');
    const waitMs = parseWaitMs(request.query);
    await membershipChange(() => membership.leave(node, { waitMs }));
    return ringView();
  });

  // Drops the pending change at the claimant; idempotent (nothing pending: aborted is null).
  app.post('/v1/admin/abort', { onRequest }, async () => {
    const { aborted } = await translateClusterErrors(() => membership.abort());
    return { aborted: aborted ?? null, ring: ringView() };
  });

  app.get<{ Params: { bucket?: string } }>('/v1/buckets/:bucket/props', { onRequest }, async (request) => {
    const bucket = request.params.bucket ?? '';
    deps.validateBucket(bucket);
    return propsView(membership.ring(), bucket);
  });

  app.put<{ Params: { bucket?: string } }>('/v1/buckets/:bucket/props', { onRequest }, async (request) => {
    const bucket = request.params.bucket ?? '';
    deps.validateBucket(bucket);
    const props = parseBucketProps(request.body, membership.ring().replicationFactor);
    const ring = await translateClusterErrors(() => membership.handleBucketProps(bucket, props));
    return propsView(ring, bucket);
  });

  return [
    { url: '/v1/ring', methods: ['GET'] },
    { url: '/v1/members', methods: ['GET'] },
    { url: '/v1/handoff', methods: ['GET'] },
    { url: '/v1/admin/join', methods: ['POST'] },
    { url: '/v1/admin/init', methods: ['POST'] },
    { url: '/v1/admin/leave', methods: ['POST'] },
    { url: '/v1/admin/abort', methods: ['POST'] },
    { url: '/v1/buckets/:bucket/props', methods: ['GET', 'PUT'] },
  ];
}
