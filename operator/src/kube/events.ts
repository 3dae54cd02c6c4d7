/**
 * Kubernetes Events for the operator's decisions (core/v1, which `kubectl describe` and `kubectl
 * get events` show). Recording is best effort: a failure is logged and never fails a reconcile.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventRecord } from '../core/observed';
import { API_GROUP, API_VERSION, FIELD_MANAGER, KIND } from '../core/types';
import type { KubeClient } from './client';
import { resourcePath } from './paths';

export interface InvolvedCluster {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export class EventRecorder {
  constructor(
    private readonly client: KubeClient,
    private readonly identity: string,
    private readonly log: Logger,
  ) {}

  async record(cluster: InvolvedCluster, event: EventRecord): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${cluster.name}.${Date.now().toString(16)}${randomBytes(4).toString('hex')}`, namespace: cluster.namespace },
      involvedObject: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: KIND, name: cluster.name, namespace: cluster.namespace, uid: cluster.uid },
      reason: event.reason,
      message: event.message.slice(0, 1024),
      type: event.type,
      action: event.reason,
      source: { component: FIELD_MANAGER },
      reportingComponent: FIELD_MANAGER,
      reportingInstance: this.identity.slice(0, 128),
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.log.info({ namespace: cluster.namespace, cluster: cluster.name, reason: event.reason, type: event.type }, event.message);
    try {
      await this.client.request('POST', resourcePath('Event', cluster.namespace), body);
    } catch (error) {
      this.log.warn({ err: error, reason: event.reason }, 'could not record an event');
    }
  }
}
