/**
 * PUT, GET and DELETE of /v1/buckets/{bucket}/keys/{key}: HTTP parsing and rendering only.
 * Every input is validated before the service is called, so a bad request never reaches
 * storage; the service (keyValueService.ts) does the versioning.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { liveSiblings } from '../core/dvv';
import type { VersionedObject } from '../core/version';
import type { NodeMetrics } from '../metrics';
import type { ContextCodec } from './contextToken';
import { DynamoError } from './errors';
import type { KeyValueService } from './keyValueService';
import { CONTEXT_HEADER, JSON_CONTENT_TYPE, sendError, type PathMethods } from './reply';
import { parseQuery, validateBucket, validateContentType, validateKey, validateValue, type KeyOperation, type ValidationLimits } from './validation';

export const KEY_PATH = '/v1/buckets/:bucket/keys/:key';

export interface KeyRouteDeps {
  readonly service: KeyValueService;
  readonly contexts: ContextCodec;
  readonly metrics: NodeMetrics;
  readonly limits: ValidationLimits;
  /** Run before body parsing on every key route (stopping, overload, auth). */
  readonly guards: readonly onRequestHookHandler[];
}

/** The 300 Multiple Choices body. */
export interface SiblingsBody {
  readonly context: string;
  readonly siblings: readonly { readonly value: string; readonly contentType: string; readonly lastModified: string }[];
}

interface KeyParams {
  readonly bucket?: string;
  readonly key?: string;
}

interface KeyRoute {
  Params: KeyParams;
  Querystring: Record<string, string | string[] | undefined>;
}

type KeyRequest = FastifyRequest<KeyRoute>;

const EMPTY_BODY = new Uint8Array(0);

export function registerKeyRoutes(fastify: FastifyInstance, deps: KeyRouteDeps): PathMethods[] {
  const { service, contexts, limits } = deps;
  const onRequest = [...deps.guards];

  fastify.get<KeyRoute>(KEY_PATH, { onRequest, config: { operation: 'get' } }, async (request, reply) => {
    const { bucket, key, query } = target(request, 'get', limits);
    const object = await service.get(bucket, key, { ...query.quorum, consistent: query.consistent });
    const live = object === undefined ? 0 : liveSiblings(object).length;
    if (live > 0) deps.metrics.siblingsRead(live);
    return sendObject(reply, object, contexts);
  });

  fastify.put<KeyRoute>(KEY_PATH, { onRequest, config: { operation: 'put' } }, async (request, reply) => {
    const { bucket, key, query } = target(request, 'put', limits);
    const contentType = validateContentType(request.headers['content-type']);
    const context = contexts.decode(contextHeader(request));
    const value = validateValue(bodyBytes(request.body), limits);
    const object = await service.put(bucket, key, value, contentType, context, query.quorum);
    if (query.returnBody) return sendObject(reply, object, contexts);
    return reply.code(204).header(CONTEXT_HEADER, contexts.encode(object.context)).send();
  });

  fastify.delete<KeyRoute>(KEY_PATH, { onRequest, config: { operation: 'delete' } }, async (request, reply) => {
    const { bucket, key, query } = target(request, 'delete', limits);
    const context = contexts.decode(contextHeader(request));
    const object = await service.delete(bucket, key, context, query.quorum);
    return reply.code(204).header(CONTEXT_HEADER, contexts.encode(object.context)).send();
  });

  return [{ url: KEY_PATH, methods: ['GET', 'PUT', 'DELETE'] }];
}

function target(request: KeyRequest, operation: KeyOperation, limits: ValidationLimits) {
  const bucket = validateBucket(request.params.bucket, limits);
  const key = validateKey(request.params.key, limits);
  const query = parseQuery(operation, request.query);
  return { bucket, key, query };
}

function contextHeader(request: FastifyRequest): string | undefined {
  const header = request.headers[CONTEXT_HEADER];
  if (Array.isArray(header)) throw new DynamoError('CONTEXT_INVALID', 'Send at most one X-Dynamo-Context header.');
  return header;
}

function bodyBytes(body: unknown): Uint8Array {
  if (body === undefined || body === null) return EMPTY_BODY;
  if (body instanceof Uint8Array) return body;
  // The only content-type parser installed yields Buffers; anything else is a wiring bug.
  throw new DynamoError('INTERNAL', 'The request body was not parsed as bytes.');
}

/**
 * Renders a key's state as GET does: 200 with the one live value, 300 with every live sibling,
 * 404 when absent or deleted (with the context when a tombstone exists, so a later put with it
 * supersedes the delete).
 */
function sendObject(reply: FastifyReply, object: VersionedObject | undefined, contexts: ContextCodec): FastifyReply {
  if (object === undefined) return sendError(reply, new DynamoError('KEY_NOT_FOUND'));
  const context = contexts.encode(object.context);
  const live = liveSiblings(object);
  const only = live[0];
  if (only === undefined) return sendError(reply, new DynamoError('KEY_NOT_FOUND', undefined, { [CONTEXT_HEADER]: context }));
  reply.header(CONTEXT_HEADER, context);
  if (live.length === 1) {
    return reply.code(200).type(only.contentType).send(Buffer.from(only.value.buffer, only.value.byteOffset, only.value.byteLength));
  }
  const body: SiblingsBody = {
    context,
    siblings: live.map((s) => ({
      value: Buffer.from(s.value.buffer, s.value.byteOffset, s.value.byteLength).toString('base64'),
      contentType: s.contentType,
      lastModified: new Date(s.lastModifiedMs).toISOString(),
    })),
  };
  return reply.code(300).type(JSON_CONTENT_TYPE).send(body);
}
