/**
 * The JSON schemas of the OpenAPI document (components.schemas): response bodies of the key,
 * cluster and system routes. Kept apart from openapi.ts so each file stays readable.
 */

export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

export const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });

export const schemas = {
  QuorumValue: {
    description: 'An integer count of replicas, or one, quorum or all.',
    oneOf: [
      { type: 'string', pattern: '^[0-9]{1,3}$' },
      { type: 'string', enum: ['one', 'quorum', 'all'] },
    ],
  },
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
  BucketProps: {
    type: 'object',
    additionalProperties: false,
    properties: {
      r: { type: 'integer', minimum: 1, description: 'Default read quorum, 1..N.' },
      w: { type: 'integer', minimum: 1, description: 'Default write quorum, 1..N.' },
      dw: { type: 'integer', minimum: 0, description: 'Default durable acknowledgements, 0..w.' },
      conflictMode: {
        enum: ['siblings', 'lww'],
        description: 'siblings (default): concurrent writes are all kept. lww: the value with the latest lastModified wins and siblings never appear.',
      },
    },
  },
  BucketPropsView: {
    type: 'object',
    required: ['bucket', 'props'],
    additionalProperties: false,
    properties: {
      bucket: { type: 'string' },
      props: { allOf: [ref('BucketProps'), { required: ['conflictMode'] }] },
    },
  },
  Member: {
    type: 'object',
    required: ['id', 'clientUrl', 'peerUrl', 'state', 'up', 'phi', 'lastHeartbeatMsAgo', 'ownership', 'self'],
    additionalProperties: false,
    properties: {
      id: { type: 'string' },
      clientUrl: { type: 'string', description: 'Base URL of the member\'s client API.' },
      peerUrl: { type: 'string', description: 'Base URL of the member\'s peer API (what a join\'s seed names).' },
      state: { enum: ['joining', 'normal', 'leaving', 'left'] },
      up: { type: 'boolean', description: 'Reachable in this node\'s judgement (phi accrual and recent call outcomes).' },
      phi: { type: 'number', minimum: 0 },
      lastHeartbeatMsAgo: { type: ['number', 'null'], minimum: 0, description: 'Milliseconds since the last heartbeat; null: never heard from.' },
      ownership: { type: 'number', minimum: 0, maximum: 1, description: 'Share of partition replicas this member owns.' },
      self: { type: 'boolean' },
    },
  },
  Ring: {
    type: 'object',
    required: ['clusterId', 'version', 'partitionCount', 'replicationFactor', 'claimant', 'members', 'activeMembers', 'partitions', 'pending'],
    additionalProperties: false,
    properties: {
      clusterId: { type: 'string' },
      version: { type: 'integer', minimum: 1 },
      partitionCount: { type: 'integer', minimum: 1, description: 'Q.' },
      replicationFactor: { type: 'integer', minimum: 1, description: 'N.' },
      claimant: { type: ['string', 'null'], description: 'The member that applies ring changes (the lowest-id normal member).' },
      members: { type: 'array', items: ref('Member') },
      activeMembers: { type: 'integer', minimum: 1 },
      partitions: {
        type: 'array',
        items: {
          type: 'object',
          required: ['partition', 'owners'],
          additionalProperties: false,
          properties: { partition: { type: 'integer', minimum: 0 }, owners: { type: 'array', items: { type: 'string' }, description: 'The primary replicas, in preference order.' } },
        },
      },
      pending: {
        oneOf: [{ type: 'null' }, ref('PendingChange')],
        description: 'The membership change in progress (null when none): the plan being moved to and its transfers. The partitions above keep their owners until it commits.',
      },
    },
  },
  PendingChange: {
    type: 'object',
    required: ['joining', 'leaving', 'transfersTotal', 'transfersDone', 'partitions', 'transfers'],
    additionalProperties: false,
    properties: {
      joining: { type: 'array', items: { type: 'string' }, description: 'Members that become owners when the change commits.' },
      leaving: { type: 'array', items: { type: 'string' }, description: 'Members that become "left" when the change commits.' },
      transfersTotal: { type: 'integer', minimum: 0 },
      transfersDone: { type: 'integer', minimum: 0, description: 'Transfers the claimant has recorded as finished; the change commits when all are.' },
      partitions: {
        type: 'array',
        description: 'The partitions whose owners change, with their owners in the plan being moved to.',
        items: {
          type: 'object',
          required: ['partition', 'owners'],
          additionalProperties: false,
          properties: { partition: { type: 'integer', minimum: 0 }, owners: { type: 'array', items: { type: 'string' } } },
        },
      },
      transfers: { type: 'array', items: ref('Transfer'), description: 'As in GET /v1/handoff: progress fields on the sender and the receiver of a transfer only.' },
    },
  },
  AbortResult: {
    type: 'object',
    required: ['aborted', 'ring'],
    additionalProperties: false,
    properties: {
      aborted: {
        oneOf: [
          { type: 'null' },
          {
            type: 'object',
            required: ['joining', 'leaving', 'transfers', 'transfersDone'],
            additionalProperties: false,
            properties: {
              joining: { type: 'array', items: { type: 'string' }, description: 'Members whose join was dropped; they are now "left" (to join again, start them with an empty data directory).' },
              leaving: { type: 'array', items: { type: 'string' }, description: 'Members whose leave was dropped; they are "normal" again.' },
              transfers: { type: 'integer', minimum: 0 },
              transfersDone: { type: 'integer', minimum: 0 },
            },
          },
        ],
        description: 'The change that was dropped; null when none was pending (the call is idempotent).',
      },
      ring: ref('Ring'),
    },
  },
  Transfer: {
    type: 'object',
    required: ['id', 'partition', 'from', 'to', 'state'],
    additionalProperties: false,
    properties: {
      id: { type: 'string' },
      partition: { type: 'integer', minimum: 0 },
      from: { type: 'string' },
      to: { type: 'string' },
      state: { enum: ['waiting', 'streaming', 'done'] },
      role: { enum: ['sending', 'receiving'] },
      keysDone: { type: 'integer', minimum: 0 },
      keysTotal: { type: 'integer', minimum: 0, description: 'Keys in the partition when the sender started (0 on the receiver).' },
      bytesDone: { type: 'integer', minimum: 0 },
      bytesPerSecond: { type: 'integer', minimum: 0 },
      etaSeconds: { type: ['integer', 'null'], minimum: 0 },
    },
  },
  Handoff: {
    type: 'object',
    required: ['ringVersion', 'transfers'],
    additionalProperties: false,
    properties: {
      ringVersion: { type: 'integer', minimum: 1 },
      transfers: {
        type: 'array',
        description: 'The transfers of the pending membership change (empty when none is pending). Progress fields are present on the sender and the receiver of a transfer only.',
        items: ref('Transfer'),
      },
    },
  },
  Members: {
    type: 'object',
    required: ['self', 'ringVersion', 'members', 'hintBacklog'],
    additionalProperties: false,
    properties: {
      self: { type: 'string' },
      ringVersion: { type: 'integer', minimum: 1 },
      members: { type: 'array', items: ref('Member') },
      hintBacklog: { type: 'integer', minimum: 0, description: 'Hinted writes on this node waiting for their owner.' },
    },
  },
  Probe: { type: 'object', required: ['status'], properties: { status: { enum: ['ok', 'ready', 'not-ready'] }, reason: { type: 'string' } } },
  Status: {
    type: 'object',
    required: ['nodeId', 'version', 'uptimeSeconds', 'inFlightRequests', 'storage', 'cluster'],
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
      cluster: {
        type: 'object',
        required: ['clusterId', 'ringVersion', 'members', 'membersUp', 'hintBacklog', 'actorId'],
        additionalProperties: false,
        properties: {
          clusterId: { type: 'string' },
          ringVersion: { type: 'integer', minimum: 1 },
          members: { type: 'integer', minimum: 1, description: 'Members that have not left.' },
          membersUp: { type: 'integer', minimum: 1, description: 'Of those, reachable in this node\'s judgement (itself included).' },
          hintBacklog: { type: 'integer', minimum: 0 },
          actorId: { type: 'string', description: 'The id this node stamps version dots with; it changes at every start.' },
        },
      },
      antiEntropy: {
        type: 'object',
        description: 'Background replica repair by tree exchange, as this node runs it.',
        required: ['enabled', 'intervalMs', 'exchanges', 'keysRepaired', 'bytes', 'treesBuilt', 'lastExchange'],
        additionalProperties: false,
        properties: {
          enabled: { type: 'boolean' },
          intervalMs: { type: 'integer', minimum: 0 },
          exchanges: { type: 'integer', minimum: 0, description: 'Exchanges this node started and finished since it started.' },
          keysRepaired: { type: 'integer', minimum: 0 },
          bytes: { type: 'integer', minimum: 0 },
          treesBuilt: { type: 'integer', minimum: 0, description: 'Partitions whose hash tree is in memory.' },
          lastExchange: {
            oneOf: [
              { type: 'null' },
              {
                type: 'object',
                required: ['partition', 'peer', 'atMs', 'differingSegments', 'differingKeys', 'keysRepaired', 'bytes'],
                additionalProperties: false,
                properties: {
                  partition: { type: 'integer', minimum: 0 },
                  peer: { type: 'string' },
                  atMs: { type: 'integer', minimum: 0 },
                  differingSegments: { type: 'integer', minimum: 0 },
                  differingKeys: { type: 'integer', minimum: 0 },
                  keysRepaired: { type: 'integer', minimum: 0 },
                  bytes: { type: 'integer', minimum: 0 },
                },
              },
            ],
          },
        },
      },
    },
  },
} as const satisfies Json;
