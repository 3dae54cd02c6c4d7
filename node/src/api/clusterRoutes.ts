/**
 * Cluster routes on the client port: the ring and members as this node sees them, bucket
 * properties, and the admin operations join and leave. Bodies are JSON.
 */
import type { FastifyInstance } from 'fastify';
import { parseQuorumSpec } from '../core/quorum';
import { activeMembers, claimant, type BucketProps } from '../core/ring';
import type { Membership } from '../cluster/membership';
import { DynamoError } from './errors';
import { jsonBody, type PathMethods } from './reply';
import { translateClusterErrors } from './clusterKeyValueService';

export interface ClusterRouteDeps {
  readonly membership: Membership;
  /** Hints waiting for delivery on this node. */
  readonly hintBacklog: () => number;
  readonly validateBucket: (bucket: string) => void;
  /** The seed a join without a body uses (the node's first configured seed). */
  readonly defaultSeed?: string;
}

/** Accepts "host:port" or a full http(s) URL for a seed's peer endpoint. */
export function normalizePeerAddress(text: unknown): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > 1024) throw new DynamoError('PARAMETER_INVALID', 'seed must be "host:port" or an http URL of a peer port');
  const candidate = /^https?:\/\//.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    throw new DynamoError('PARAMETER_INVALID', `seed ${JSON.stringify(text)} is not a valid address`);
  }
  if (url.port === '' || url.pathname !== '/' || url.search !== '') throw new DynamoError('PARAMETER_INVALID', `seed ${JSON.stringify(text)} must name a host and port only`);
  return `${url.protocol}//${url.host}`;
}

function parseBucketProps(body: unknown): BucketProps {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new DynamoError('PARAMETER_INVALID', 'bucket properties must be a JSON object');
  const fields = body as Record<string, unknown>;
  const known = new Set(['r', 'w', 'dw', 'conflictMode']);
  for (const name of Object.keys(fields)) if (!known.has(name)) throw new DynamoError('PARAMETER_INVALID', `unknown bucket property ${JSON.stringify(name)}`);
  const props: { r?: number; w?: number; dw?: number; conflictMode?: 'siblings' | 'lww' } = {};
  for (const name of ['r', 'w', 'dw'] as const) {
    const value = fields[name];
    if (value === undefined) continue;
    const spec = typeof value === 'number' ? value : parseQuorumSpec(String(value));
    if (typeof spec !== 'number' || !Number.isInteger(spec) || spec < 0 || spec > 64) {
      throw new DynamoError('PARAMETER_INVALID', `${name} must be an integer; bucket properties store numbers (one/quorum/all are per-request)`);
    }
    props[name] = spec;
  }
  if (fields.conflictMode !== undefined) {
    if (fields.conflictMode !== 'siblings' && fields.conflictMode !== 'lww') throw new DynamoError('PARAMETER_INVALID', 'conflictMode must be "siblings" or "lww"');
    props.conflictMode = fields.conflictMode;
  }
  return props;
}

/** An optional JSON object body: empty means {}. */
function optionalObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || (body instanceof Uint8Array && body.length === 0)) return {};
  const parsed = jsonBody(body);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new DynamoError('REQUEST_INVALID', 'The body must be a JSON object.');
  return parsed as Record<string, unknown>;
}

export function registerClusterRoutes(app: FastifyInstance, deps: ClusterRouteDeps): PathMethods[] {
  const { membership } = deps;

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
    };
  };

  app.get('/v1/ring', async () => ringView());
  app.get('/v1/members', async () => ({ self: membership.selfId, ringVersion: membership.ring().version, members: membership.members(), hintBacklog: deps.hintBacklog() }));

  app.post('/v1/admin/join', async (request) => {
    const body = optionalObject(request.body);
    const seed = normalizePeerAddress(body.seed ?? deps.defaultSeed);
    await translateClusterErrors(() => membership.join(seed));
    return ringView();
  });

  app.post('/v1/admin/leave', async (request) => {
    const body = optionalObject(request.body);
    const node = body.node === undefined ? membership.selfId : body.node;
    if (typeof node !== 'string' || node.length === 0) throw new DynamoError('PARAMETER_INVALID', 'node must be a member id');
    await translateClusterErrors(() => membership.leave(node));
    return ringView();
  });

  app.get<{ Params: { bucket: string } }>('/v1/buckets/:bucket/props', async (request) => {
    deps.validateBucket(request.params.bucket);
    const props = membership.ring().buckets[request.params.bucket] ?? {};
    return { bucket: request.params.bucket, props: { conflictMode: 'siblings', ...props } };
  });

  app.put<{ Params: { bucket: string } }>('/v1/buckets/:bucket/props', async (request) => {
    deps.validateBucket(request.params.bucket);
    const props = parseBucketProps(jsonBody(request.body));
    const n = membership.ring().replicationFactor;
    for (const name of ['r', 'w', 'dw'] as const) {
      const value = props[name];
      if (value !== undefined && (value > n || (name !== 'dw' && value < 1))) throw new DynamoError('PARAMETER_INVALID', `${name}=${value} is impossible with N=${n}`);
    }
    const ring = await translateClusterErrors(() => membership.handleBucketProps(request.params.bucket, props));
    return { bucket: request.params.bucket, props: { conflictMode: 'siblings', ...(ring.buckets[request.params.bucket] ?? {}) } };
  });

  return [
    { url: '/v1/ring', methods: ['GET'] },
    { url: '/v1/members', methods: ['GET'] },
    { url: '/v1/admin/join', methods: ['POST'] },
    { url: '/v1/admin/leave', methods: ['POST'] },
    { url: '/v1/buckets/:bucket/props', methods: ['GET', 'PUT'] },
  ];
}
