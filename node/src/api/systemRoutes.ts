/**
 * Operational routes: liveness, readiness, Prometheus metrics, node status and the OpenAPI
 * document. None of them count against the in-flight limit, so an overloaded node can still be
 * probed and scraped.
 */
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import type { NodeMetrics } from '../metrics';
import { openApiDocument } from './openapi';
import { JSON_CONTENT_TYPE, type PathMethods } from './reply';

export interface NodeStatusInfo {
  readonly nodeId: string;
  readonly version: string;
  readonly uptimeSeconds: number;
  readonly storage: { readonly engine: string; readonly approximateBytes: number };
}

/** What /v1/status reports beyond the API's own counters; server.ts supplies it. */
export type StatusSource = () => Promise<NodeStatusInfo>;

export interface SystemRouteDeps {
  readonly metrics: NodeMetrics;
  readonly status: StatusSource;
  readonly inFlightRequests: () => number;
  /** Undefined when ready, else a short reason (starting, stopping, not-admitted, joining, ...). */
  readonly readiness: () => string | undefined;
  /** Authentication for /v1/status when the node has a token. */
  readonly statusGuards: readonly onRequestHookHandler[];
}

export function registerSystemRoutes(fastify: FastifyInstance, deps: SystemRouteDeps): PathMethods[] {
  fastify.get('/healthz', { config: { operation: 'healthz' } }, async (_request, reply) => {
    return reply.type(JSON_CONTENT_TYPE).send({ status: 'ok' });
  });

  fastify.get('/readyz', { config: { operation: 'readyz' } }, async (_request, reply) => {
    const problem = deps.readiness();
    if (problem === undefined) return reply.type(JSON_CONTENT_TYPE).send({ status: 'ready' });
    return reply.code(503).type(JSON_CONTENT_TYPE).send({ status: 'not-ready', reason: problem });
  });

  fastify.get('/metrics', { config: { operation: 'metrics' } }, async (_request, reply) => {
    const text = await deps.metrics.render();
    return reply.type(deps.metrics.contentType).send(text);
  });

  fastify.get('/v1/status', { onRequest: [...deps.statusGuards], config: { operation: 'status' } }, async (_request, reply) => {
    const info = await deps.status();
    return reply.type(JSON_CONTENT_TYPE).send({ ...info, inFlightRequests: deps.inFlightRequests() });
  });

  fastify.get('/v1/openapi.json', { config: { operation: 'openapi' } }, async (_request, reply) => {
    return reply.type(JSON_CONTENT_TYPE).send(openApiDocument);
  });

  return ['/healthz', '/readyz', '/metrics', '/v1/status', '/v1/openapi.json'].map((url) => ({ url, methods: ['GET'] }));
}
