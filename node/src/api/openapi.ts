/**
 * The OpenAPI 3.1 description of the client API, served at /v1/openapi.json. Error codes are
 * listed by hand per response (not generated from the catalogue), so the test that compares
 * this document with errors.ts and with real responses actually checks something.
 */
import { ERROR_CATALOGUE, type ErrorCode } from './errors';

type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

function errorResponse(description: string, codes: readonly ErrorCode[], headers: Record<string, Json> = {}): Json {
  return {
    description: `${description} Codes: ${codes.map((c) => `${c} (${ERROR_CATALOGUE[c].status})`).join(', ')}.`,
    headers,
    content: {
      'application/json': {
        schema: {
          type: 'object',
          required: ['error'],
          additionalProperties: false,
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              additionalProperties: false,
              properties: { code: { enum: codes }, message: { type: 'string' } },
            },
          },
        },
      },
    },
  };
}

const contextHeader = (required: boolean): Json => ({ $ref: required ? '#/components/headers/ContextRequired' : '#/components/headers/ContextOptional' });
const retryAfter: Json = { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } };

const unauthorized = errorResponse('Authentication is enabled and no bearer token was sent.', ['UNAUTHORIZED'], {
  'WWW-Authenticate': { required: true, schema: { type: 'string' } },
});
const forbidden = errorResponse('The bearer token was not accepted.', ['FORBIDDEN']);
const serverError = errorResponse('The node failed; STORAGE_CORRUPT means the stored object failed its checksum.', ['INTERNAL', 'STORAGE_CORRUPT']);
const unavailable = errorResponse(
  'The node is overloaded or shutting down (OVERLOADED, retry after Retry-After seconds), or a quorum could not be reached (QUORUM_UNAVAILABLE, replication only).',
  ['OVERLOADED', 'QUORUM_UNAVAILABLE'],
  retryAfter,
);
const tooLarge = errorResponse('The body is larger than the node accepts (limits.maxValueBytes, default 1 MiB).', ['VALUE_TOO_LARGE']);

const valueFound: Json = {
  description: 'Exactly one live value: the stored bytes with their Content-Type.',
  headers: { 'X-Dynamo-Context': contextHeader(true) },
  content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
};
const siblingsFound: Json = {
  description: 'Concurrent values (siblings). Resolve them and write back with the context.',
  headers: { 'X-Dynamo-Context': contextHeader(true) },
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Siblings' } } },
};

const keyParameters: Json = [
  { name: 'bucket', in: 'path', required: true, description: 'UTF-8, 1 to limits.maxBucketBytes bytes (default 100), percent-encoded.', schema: { type: 'string', minLength: 1 } },
  { name: 'key', in: 'path', required: true, description: 'UTF-8, 1 to limits.maxKeyBytes bytes (default 1024), percent-encoded.', schema: { type: 'string', minLength: 1 } },
];
const contextParameter: Json = {
  name: 'X-Dynamo-Context',
  in: 'header',
  required: false,
  description: 'The context of an earlier read or write. Absent or empty: a blind write that supersedes nothing.',
  schema: { type: 'string', pattern: '^[A-Za-z0-9_-]*$' },
};

const jsonOk = (description: string, schema: Json): Json => ({ description, content: { 'application/json': { schema } } });

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'dynamokv node API',
    version: '1.0.0',
    description:
      'A Dynamo-style key-value store. Every error has the body {"error": {"code", "message"}} with a code from one catalogue. ' +
      'On any known path, a method it does not serve answers 405 METHOD_NOT_ALLOWED with an Allow header (components.responses.MethodNotAllowed); ' +
      'an unknown path answers 404 NOT_FOUND (components.responses.RouteNotFound).',
  },
  paths: {
    '/v1/buckets/{bucket}/keys/{key}': {
      parameters: keyParameters,
      get: {
        operationId: 'getKey',
        summary: 'Read a key.',
        responses: {
          '200': valueFound,
          '300': siblingsFound,
          '400': errorResponse('Invalid bucket, key or query parameter (no query parameters are accepted).', ['BUCKET_INVALID', 'KEY_INVALID', 'PARAMETER_INVALID', 'REQUEST_INVALID']),
          '401': unauthorized,
          '403': forbidden,
          '404': errorResponse('The key was never written, or every value was deleted; then X-Dynamo-Context is sent so a later write supersedes the delete.', ['KEY_NOT_FOUND'], {
            'X-Dynamo-Context': contextHeader(false),
          }),
          '500': serverError,
          '503': unavailable,
        },
      },
      put: {
        operationId: 'putKey',
        summary: 'Write a value. The body is the value (any bytes); its Content-Type is kept (default application/octet-stream).',
        parameters: [
          contextParameter,
          { name: 'returnbody', in: 'query', required: false, description: 'true: answer as GET does.', schema: { type: 'string', enum: ['true', 'false'] } },
        ],
        requestBody: { required: false, content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
        responses: {
          '200': valueFound,
          '204': { description: 'Stored. The context covers the new value.', headers: { 'X-Dynamo-Context': contextHeader(true) } },
          '300': siblingsFound,
          '400': errorResponse('Invalid bucket, key, query parameter, context or Content-Type.', [
            'BUCKET_INVALID',
            'KEY_INVALID',
            'PARAMETER_INVALID',
            'CONTEXT_INVALID',
            'CONTENT_TYPE_INVALID',
            'REQUEST_INVALID',
          ]),
          '401': unauthorized,
          '403': forbidden,
          '413': tooLarge,
          '500': serverError,
          '503': unavailable,
        },
      },
      delete: {
        operationId: 'deleteKey',
        summary: 'Delete a key: writes a tombstone that supersedes what the context saw.',
        parameters: [contextParameter],
        responses: {
          '204': { description: 'Deleted. The context covers the tombstone.', headers: { 'X-Dynamo-Context': contextHeader(true) } },
          '400': errorResponse('Invalid bucket, key, query parameter or context.', ['BUCKET_INVALID', 'KEY_INVALID', 'PARAMETER_INVALID', 'CONTEXT_INVALID', 'REQUEST_INVALID']),
          '401': unauthorized,
          '403': forbidden,
          '413': tooLarge,
          '500': serverError,
          '503': unavailable,
        },
      },
    },
    '/healthz': {
      get: { operationId: 'health', summary: 'Liveness: the process serves HTTP.', responses: { '200': jsonOk('Alive.', { $ref: '#/components/schemas/Probe' }) } },
    },
    '/readyz': {
      get: {
        operationId: 'ready',
        summary: 'Readiness: storage is open and the node is not shutting down.',
        responses: { '200': jsonOk('Ready.', { $ref: '#/components/schemas/Probe' }), '503': jsonOk('Starting or stopping.', { $ref: '#/components/schemas/Probe' }) },
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        summary: 'Prometheus metrics.',
        responses: { '200': { description: 'Prometheus text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    '/v1/status': {
      get: {
        operationId: 'status',
        summary: 'Node id, version, uptime and storage statistics.',
        responses: { '200': jsonOk('Status of this node.', { $ref: '#/components/schemas/Status' }), '401': unauthorized, '403': forbidden },
      },
    },
    '/v1/openapi.json': {
      get: { operationId: 'openapi', summary: 'This document.', responses: { '200': jsonOk('OpenAPI 3.1 document.', { type: 'object' }) } },
    },
  },
  components: {
    headers: {
      ContextRequired: { description: 'Opaque causal context (base64url, MAC-protected).', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' } },
      ContextOptional: { description: 'Opaque causal context (base64url, MAC-protected).', required: false, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' } },
      RetryAfter: { description: 'Seconds to wait before retrying.', required: true, schema: { type: 'string', pattern: '^[0-9]+$' } },
    },
    responses: {
      MethodNotAllowed: errorResponse('The path exists but does not serve this method.', ['METHOD_NOT_ALLOWED'], {
        Allow: { required: true, schema: { type: 'string' } },
      }),
      RouteNotFound: errorResponse('No such path.', ['NOT_FOUND']),
    },
    schemas: {
      Siblings: {
        type: 'object',
        required: ['context', 'siblings'],
        additionalProperties: false,
        properties: {
          context: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' },
          siblings: {
            type: 'array',
            minItems: 2,
            items: {
              type: 'object',
              required: ['value', 'contentType', 'lastModified'],
              additionalProperties: false,
              properties: {
                value: { type: 'string', contentEncoding: 'base64' },
                contentType: { type: 'string' },
                lastModified: { type: 'string', format: 'date-time' },
              },
            },
          },
        },
      },
      Probe: { type: 'object', required: ['status'], properties: { status: { enum: ['ok', 'ready', 'not-ready'] } } },
      Status: {
        type: 'object',
        required: ['nodeId', 'version', 'uptimeSeconds', 'inFlightRequests', 'storage'],
        properties: {
          nodeId: { type: 'string' },
          version: { type: 'string' },
          uptimeSeconds: { type: 'number', minimum: 0 },
          inFlightRequests: { type: 'integer', minimum: 0 },
          storage: {
            type: 'object',
            required: ['engine', 'approximateBytes'],
            properties: { engine: { type: 'string' }, approximateBytes: { type: 'integer', minimum: 0 } },
          },
        },
      },
    },
  },
} as const satisfies Json;
