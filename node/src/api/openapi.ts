/**
 * The OpenAPI 3.1 description of the client API, served at /v1/openapi.json. Error codes are
 * listed by hand per response (not generated from the catalogue), so the test that compares
 * this document with errors.ts and with real responses actually checks something.
 */
import { ERROR_CATALOGUE, type ErrorCode } from './errors';
import { ref, schemas, type Json } from './openapiSchemas';

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
/** Sent on every answer of a cluster node; partition-aware clients refresh their ring when it is newer. */
const ringVersionHeader: Json = { 'X-Dynamo-Ring-Version': { $ref: '#/components/headers/RingVersion' } };
const retryAfter: Json = { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } };

const unauthorized = errorResponse(
  'Authentication is on (the node has client tokens) and no bearer token was sent, the Authorization header is not "Bearer <token>", or the token is not one this node accepts.',
  ['UNAUTHORIZED'],
  { 'WWW-Authenticate': { required: true, schema: { type: 'string' } } },
);
const forbidden = errorResponse(
  'The token is valid but its scope is too small for this route (scopes: read < write < admin; key and bucket-property writes need write, /v1/admin/* needs admin). WWW-Authenticate names the scope needed.',
  ['FORBIDDEN'],
  { 'WWW-Authenticate': { required: true, schema: { type: 'string' } } },
);
/** Routes any token may call (the read scope is the smallest) can answer 401 but never 403. */
const readAuth = { '401': unauthorized };
const scopedAuth = { '401': unauthorized, '403': forbidden };
const serverError = errorResponse('The node failed; STORAGE_CORRUPT means the coordinator\'s stored copy failed its checksum.', ['INTERNAL', 'STORAGE_CORRUPT']);
const readServerError = errorResponse('The node failed.', ['INTERNAL']);
const QUORUM_NOTE =
  'QUORUM_UNAVAILABLE: fewer replicas answered than the quorum needs (replicas down or cut off, a consistent read without a majority of primaries, ' +
  'or an r/w/dw/pr/pw that N allows but the ring cannot meet today because it has fewer members). Retry after Retry-After seconds.';
const LEFT_NOTE = 'NODE_LEFT: this node has left the cluster (its partitions were handed off); send requests to another member.';
const readUnavailable = errorResponse(
  `The node is overloaded or shutting down (OVERLOADED), or the read quorum was not met. ${QUORUM_NOTE} A replica whose stored copy fails its integrity check counts as not answering. ${LEFT_NOTE}`,
  ['OVERLOADED', 'QUORUM_UNAVAILABLE', 'NODE_LEFT'],
  retryAfter,
);
const writeUnavailable = errorResponse(
  `The node is overloaded or shutting down (OVERLOADED), or the write quorum was not met. ${QUORUM_NOTE} ` +
    `A write that failed its quorum is not rolled back: it may have been stored on some replicas and can appear later (as a value or a sibling). ${LEFT_NOTE}`,
  ['OVERLOADED', 'QUORUM_UNAVAILABLE', 'NODE_LEFT'],
  retryAfter,
);
const claimantUnavailable = (what: string): Json => errorResponse(`${what} Retry after Retry-After seconds.`, ['QUORUM_UNAVAILABLE'], retryAfter);
const tooLarge = errorResponse('The body is larger than the node accepts (limits.maxValueBytes, default 1 MiB).', ['VALUE_TOO_LARGE']);

const valueFound: Json = {
  description: 'Exactly one live value: the stored bytes with their Content-Type.',
  headers: { 'X-Dynamo-Context': contextHeader(true), ...ringVersionHeader },
  content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
};
const siblingsFound: Json = {
  description: 'Concurrent values (siblings). Resolve them and write back with the context.',
  headers: { 'X-Dynamo-Context': contextHeader(true), ...ringVersionHeader },
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
const parameterRef = (name: string): Json => ({ $ref: `#/components/parameters/${name}` });

/** A quorum query parameter: an integer or one|quorum|all. */
function quorumParameter(name: string, description: string): Json {
  return {
    name,
    in: 'query',
    required: false,
    description:
      `${description} An integer, or one, quorum (a majority) or all, resolved against the copies the ring keeps today (min(N, members)). ` +
      `${name} above N (or below its minimum) answers 400 PARAMETER_INVALID naming ${name}; a value N allows but the ring cannot meet today answers 503 QUORUM_UNAVAILABLE before anything is written.`,
    schema: ref('QuorumValue'),
  };
}

const joinBody: Json = {
  required: false,
  description: 'Optional. An empty body joins through the node\'s first configured seed.',
  content: {
    'application/json': {
      schema: {
        type: 'object',
        properties: { seed: { type: 'string', description: 'The peer endpoint of any member of the cluster to join: "host:peerPort" or "http://host:peerPort".' } },
      },
    },
  },
};
const leaveBody: Json = {
  required: false,
  description: 'Optional. An empty body (or no "node") makes this node leave.',
  content: { 'application/json': { schema: { type: 'object', properties: { node: { type: 'string', minLength: 1, description: 'The id of the member that leaves.' } } } } },
};
const waitMsParameter: Json = {
  name: 'waitMs',
  in: 'query',
  required: false,
  description:
    'How long to wait, in milliseconds (0 to 300000, default 0), when another membership change is still streaming. ' +
    '0 answers 409 MEMBERSHIP_CONFLICT with Retry-After at once; callers that drive one change at a time retry after that delay.',
  schema: { type: 'string', pattern: '^[0-9]{1,7}$' },
};
const changePendingNote =
  'A change refused because another membership change is still streaming (or still was when waitMs ran out) carries Retry-After; other conflicts do not.';
const retryAfterOptional: Json = { 'Retry-After': { description: 'Seconds to wait before retrying; sent when another membership change is still streaming.', required: false, schema: { type: 'string', pattern: '^[0-9]+$' } } };
const bucketParameter: Json = [
  { name: 'bucket', in: 'path', required: true, description: 'UTF-8, 1 to limits.maxBucketBytes bytes (default 100), percent-encoded.', schema: { type: 'string', minLength: 1 } },
];

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'dynamokv node API',
    version: '1.0.0',
    description:
      'A Dynamo-style key-value store. Every node runs the cluster layer (a single node is a cluster of one member) and accepts any request; ' +
      'it coordinates or forwards it to the key\'s replicas. Every error has the body {"error": {"code", "message"}} with a code from one catalogue. ' +
      'On any known path, a method it does not serve answers 405 METHOD_NOT_ALLOWED with an Allow header (components.responses.MethodNotAllowed); ' +
      'an unknown path answers 404 NOT_FOUND (components.responses.RouteNotFound). Any request may also be refused as a whole before its route runs: ' +
      '400 for malformed HTTP, undecodable percent-escapes or an invalid Content-Type (components.responses.RequestRejected), 413 for a body over the size limit (components.responses.BodyTooLarge). ' +
      'With client tokens configured, every /v1 route but this document needs `Authorization: Bearer <token>`: the read scope reads keys, bucket properties, ring, members, handoff and status; ' +
      'write adds key writes and bucket properties; admin adds /v1/admin/*. /healthz, /readyz and /metrics need no token.',
  },
  paths: {
    '/v1/buckets/{bucket}/keys/{key}': {
      parameters: keyParameters,
      get: {
        operationId: 'getKey',
        summary: 'Read a key from r replicas, merged by causality; stale replicas are repaired in the background.',
        parameters: [parameterRef('r'), parameterRef('pr'), parameterRef('consistent')],
        responses: {
          '200': valueFound,
          '300': siblingsFound,
          '400': errorResponse('Invalid bucket, key or query parameter (only r, pr and consistent are accepted).', ['BUCKET_INVALID', 'KEY_INVALID', 'PARAMETER_INVALID', 'REQUEST_INVALID']),
          '401': unauthorized,
          '404': errorResponse('The key was never written, or every value was deleted; then X-Dynamo-Context is sent so a later write supersedes the delete.', ['KEY_NOT_FOUND'], {
            'X-Dynamo-Context': contextHeader(false),
            ...ringVersionHeader,
          }),
          '500': readServerError,
          '503': readUnavailable,
        },
      },
      put: {
        operationId: 'putKey',
        summary: 'Write a value to the key\'s replicas; answers after w acknowledgements (dw of them durable). The body is the value (any bytes); its Content-Type is kept (default application/octet-stream).',
        parameters: [
          contextParameter,
          { name: 'returnbody', in: 'query', required: false, description: 'true: answer as GET does.', schema: { type: 'string', enum: ['true', 'false'] } },
          parameterRef('w'),
          parameterRef('dw'),
          parameterRef('pw'),
        ],
        requestBody: { required: false, content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
        responses: {
          '200': valueFound,
          '204': { description: 'Stored. The context covers the new value.', headers: { 'X-Dynamo-Context': contextHeader(true), ...ringVersionHeader } },
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
          '503': writeUnavailable,
        },
      },
      delete: {
        operationId: 'deleteKey',
        summary: 'Delete a key: writes a tombstone that supersedes what the context saw, with the same quorums as a write.',
        parameters: [contextParameter, parameterRef('w'), parameterRef('dw'), parameterRef('pw')],
        responses: {
          '204': { description: 'Deleted. The context covers the tombstone.', headers: { 'X-Dynamo-Context': contextHeader(true), ...ringVersionHeader } },
          '400': errorResponse('Invalid bucket, key, query parameter or context.', ['BUCKET_INVALID', 'KEY_INVALID', 'PARAMETER_INVALID', 'CONTEXT_INVALID', 'REQUEST_INVALID']),
          '401': unauthorized,
          '403': forbidden,
          '413': tooLarge,
          '500': serverError,
          '503': writeUnavailable,
        },
      },
    },
    '/v1/buckets/{bucket}/props': {
      parameters: bucketParameter,
      get: {
        operationId: 'getBucketProps',
        summary: 'The bucket\'s properties: defaults for r, w, dw (when set) and its conflict mode.',
        responses: {
          '200': jsonOk('The bucket\'s properties as this node\'s ring holds them.', ref('BucketPropsView')),
          '400': errorResponse('Invalid bucket name.', ['BUCKET_INVALID']),
          ...readAuth,
        },
      },
      put: {
        operationId: 'putBucketProps',
        summary:
          'Replace the bucket\'s properties (they travel with the ring to every node). Unset r, w, dw fall back to the node defaults; a request\'s own r, w, dw win over them. ' +
          'When the ring has fewer members than a property asks for, the property is lowered to the members present for that request.',
        requestBody: { required: true, content: { 'application/json': { schema: ref('BucketProps') } } },
        responses: {
          '200': jsonOk('Stored; the properties now in force.', ref('BucketPropsView')),
          '400': errorResponse(
            'Invalid bucket name (BUCKET_INVALID), a body that is not a JSON object (REQUEST_INVALID), or an unknown property or impossible value (PARAMETER_INVALID: r or w outside 1..N, dw outside 0..N or above w, conflictMode other than siblings or lww).',
            ['BUCKET_INVALID', 'PARAMETER_INVALID', 'REQUEST_INVALID'],
          ),
          ...scopedAuth,
          '503': claimantUnavailable('The claimant (the member that applies ring changes) could not be reached.'),
        },
      },
    },
    '/v1/ring': {
      get: {
        operationId: 'ring',
        summary: 'The ring as this node sees it: members, ownership and liveness, the owners of every partition, and the pending membership change with its transfers.',
        description:
          'Partition-aware clients route by it: a key belongs to partition murmur3_32(be32(len(bucket)) ++ bucket ++ key, seed 0) mod partitionCount (UTF-8 bytes; partitionCount is a power of two), ' +
          'whose owners are the primary replicas; a request sent to an owner that is up is coordinated there instead of being forwarded.',
        responses: { '200': jsonOk('The ring.', ref('Ring')), ...readAuth },
      },
    },
    '/v1/handoff': {
      get: { operationId: 'handoff', summary: 'The partition transfers of the membership change in progress, with keys and bytes done, rate and ETA for those this node sends or receives.', responses: { '200': jsonOk('The transfers.', ref('Handoff')), ...readAuth } },
    },
    '/v1/members': {
      get: { operationId: 'members', summary: 'The members with this node\'s view of their liveness (phi accrual), and its hint backlog.', responses: { '200': jsonOk('The members.', ref('Members')), ...readAuth } },
    },
    '/v1/admin/join': {
      post: {
        operationId: 'join',
        summary:
          'Make this node join the cluster that the seed belongs to. The node\'s own single-member ring is replaced by the cluster\'s. ' +
          'With handoff (the default) the node is "joining" until the partitions it will own have streamed to it (see GET /v1/handoff and the ring\'s pending change). ' +
          'One membership change runs at a time: a join that arrives while another change streams is refused with 409 and Retry-After, or waits for it up to waitMs. ' +
          'A node whose join was aborted is "left": it joins again only when started with an empty data directory.',
        parameters: [waitMsParameter],
        requestBody: joinBody,
        responses: {
          '200': jsonOk('Joined; the ring as this node now holds it.', ref('Ring')),
          '400': errorResponse('The body is not a JSON object (REQUEST_INVALID), or the seed is missing or not a "host:port" address, or waitMs is out of range (PARAMETER_INVALID).', ['PARAMETER_INVALID', 'REQUEST_INVALID']),
          '409': errorResponse(
            `This node is already in a cluster of more than one member, is already a member of the seed's ring, the seed's cluster has another Q or N, or another membership change is still streaming. ${changePendingNote}`,
            ['MEMBERSHIP_CONFLICT'],
            retryAfterOptional,
          ),
          ...scopedAuth,
          '503': claimantUnavailable('The seed (or, through it, the claimant) could not be reached.'),
        },
      },
    },
    '/v1/admin/init': {
      post: {
        operationId: 'init',
        summary:
          'Admit this node as the founding member of a new cluster: it keeps its own one-member ring. Idempotent, and a no-op on a node that already joined a cluster. ' +
          'With --require-admission, /readyz stays 503 until a node was admitted this way or by a join; the operator calls this on ordinal 0.',
        responses: { '200': jsonOk('Admitted; the ring as this node holds it.', ref('Ring')), ...scopedAuth },
      },
    },
    '/v1/admin/leave': {
      post: {
        operationId: 'leave',
        summary:
          'Remove a member from the ring. With handoff (the default) it is "leaving" until its partitions have streamed to their new owners, then "left": it keeps its place in the member list so late gossip cannot bring it back, answers NODE_LEFT to key requests, and its data directory can be removed. ' +
          'One membership change runs at a time: a leave that arrives while another change streams is refused with 409 and Retry-After, or waits for it up to waitMs.',
        parameters: [waitMsParameter],
        requestBody: leaveBody,
        responses: {
          '200': jsonOk('Left; the ring as this node now holds it.', ref('Ring')),
          '400': errorResponse('The body is not a JSON object (REQUEST_INVALID), node is not a string naming a current member, or waitMs is out of range (PARAMETER_INVALID).', ['PARAMETER_INVALID', 'REQUEST_INVALID']),
          '409': errorResponse(`The member is the last one of the ring, or another membership change is still streaming. ${changePendingNote}`, ['MEMBERSHIP_CONFLICT'], retryAfterOptional),
          ...scopedAuth,
          '503': claimantUnavailable('The claimant (the member that applies ring changes) could not be reached.'),
        },
      },
    },
    '/v1/admin/abort': {
      post: {
        operationId: 'abort',
        summary:
          'Drop the pending membership change, for one that cannot finish (a sender or joiner gone for good). The claimant applies it: the committed plan stays, leaving members are normal again, ' +
          'joining members become "left" (they drop what they received; to join again they start with an empty data directory). Nothing is lost: until a change commits the current owners receive every write and keep all their data, ' +
          'and copies the incoming owners received are dropped by handoff cleanup. Idempotent: with no change pending, nothing changes and aborted is null.',
        responses: {
          '200': jsonOk('The change that was dropped (or null) and the ring as this node now holds it.', ref('AbortResult')),
          ...scopedAuth,
          '503': claimantUnavailable('The claimant (the member that applies ring changes) could not be reached.'),
        },
      },
    },
    '/healthz': {
      get: { operationId: 'health', summary: 'Liveness: the process serves HTTP.', responses: { '200': jsonOk('Alive.', ref('Probe')) } },
    },
    '/readyz': {
      get: {
        operationId: 'ready',
        summary: 'Readiness: storage is open, the node is not shutting down, and (with --require-admission) it was admitted to a cluster and is a normal member.',
        responses: { '200': jsonOk('Ready.', ref('Probe')), '503': jsonOk('Not ready; `reason` says why: starting, stopping, not-admitted, joining, leaving, left.', ref('Probe')) },
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
        summary: 'Node id, version, uptime, storage statistics and this node\'s view of the cluster.',
        responses: { '200': jsonOk('Status of this node.', ref('Status')), ...readAuth },
      },
    },
    '/v1/openapi.json': {
      get: { operationId: 'openapi', summary: 'This document.', responses: { '200': jsonOk('OpenAPI 3.1 document.', { type: 'object' }) } },
    },
  },
  components: {
    parameters: {
      r: quorumParameter('r', 'Replicas that must answer a read (minimum 1). Default: the bucket\'s r, else the node\'s (quorum).'),
      pr: quorumParameter('pr', 'Primary replicas (not fallbacks) among those answers (minimum 0, default 0).'),
      w: quorumParameter('w', 'Replicas that must acknowledge a write (minimum 1). Default: the bucket\'s w, else the node\'s (quorum).'),
      dw: quorumParameter('dw', 'Acknowledgements that must be durable (fsynced); minimum 0, at most w. Default: the bucket\'s dw, else the node\'s (0), lowered to w.'),
      pw: quorumParameter('pw', 'Primary replicas (not fallbacks) among the acknowledgements (minimum 0, default 0).'),
      consistent: {
        name: 'consistent',
        in: 'query',
        required: false,
        description:
          'true: a consistent read (as DynamoDB\'s ConsistentRead): a majority of the primary replicas must answer, no fallbacks; r and pr are ignored. ' +
          'When they cannot, 503 QUORUM_UNAVAILABLE, never a stale value.',
        schema: { type: 'string', enum: ['true', 'false'] },
      },
    },
    headers: {
      ContextRequired: { description: 'Opaque causal context (base64url, MAC-protected).', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' } },
      ContextOptional: { description: 'Opaque causal context (base64url, MAC-protected).', required: false, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' } },
      RetryAfter: { description: 'Seconds to wait before retrying.', required: true, schema: { type: 'string', pattern: '^[0-9]+$' } },
      RingVersion: {
        description:
          'The version of the ring this node holds (as in GET /v1/ring). Sent on every answer of the client port; a partition-aware client that routes by an older ring fetches GET /v1/ring again.',
        required: false,
        schema: { type: 'string', pattern: '^[0-9]+$' },
      },
    },
    responses: {
      MethodNotAllowed: errorResponse('The path exists but does not serve this method.', ['METHOD_NOT_ALLOWED'], {
        Allow: { required: true, schema: { type: 'string' } },
      }),
      RouteNotFound: errorResponse('No such path.', ['NOT_FOUND']),
      RequestRejected: errorResponse(
        'Any path and method, before the route runs: the request is not valid HTTP/1.1, its headers are too large or it did not arrive within 30 s ' +
          '(REQUEST_INVALID; the connection is then closed), its path has percent-escapes that do not decode to UTF-8 (BUCKET_INVALID or KEY_INVALID under /v1/buckets/, ' +
          'REQUEST_INVALID elsewhere), or it has a body whose Content-Type is not a media type (CONTENT_TYPE_INVALID).',
        ['REQUEST_INVALID', 'BUCKET_INVALID', 'KEY_INVALID', 'CONTENT_TYPE_INVALID'],
      ),
      BodyTooLarge: errorResponse('Any path and method: the body is larger than limits.maxValueBytes (default 1 MiB).', ['VALUE_TOO_LARGE']),
    },
    schemas,
  },
} as const satisfies Json;
