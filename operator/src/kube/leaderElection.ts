/**
 * Leader election with a coordination.k8s.io/v1 Lease; the decisions are core/lease.ts, this is
 * the loop that reads and writes the Lease. Timing as in client-go: try every retryPeriod; a
 * leader that has not renewed for renewDeadline gives up (it must stop acting before anyone else
 * may take over, which is why renewDeadline < leaseDuration); stop() releases the Lease so a
 * standby takes over at once instead of waiting for expiry.
 */
import type { Logger } from 'pino';
import { INITIAL_MEMORY, leaseStep, releasedRecord, type ElectionMemory, type LeaseRecord } from '../core/lease';
import { isConflict, isNotFound, type KubeClient, type RawObject } from './client';
import { resourcePath } from './paths';

export interface LeaderElectionOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationSeconds: number;
  readonly renewDeadlineSeconds: number;
  readonly retryPeriodSeconds: number;
  readonly log: Logger;
  readonly onStartedLeading: () => void;
  /** Called once when leadership is lost (not on stop()). */
  readonly onStoppedLeading: () => void;
}

export class LeaderElector {
  private memory: ElectionMemory = INITIAL_MEMORY;
  private leading = false;
  private lastRenewMs = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private current: RawObject | undefined;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly options: LeaderElectionOptions) {
    if (options.renewDeadlineSeconds >= options.leaseDurationSeconds) throw new Error('renewDeadlineSeconds must be shorter than leaseDurationSeconds');
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.loop = this.tick().finally(() => this.schedule(this.options.retryPeriodSeconds * 1000));
    }, delayMs);
  }

  private get path(): string {
    return resourcePath('Lease', this.options.namespace, this.options.name);
  }

  private async tick(): Promise<void> {
    const { client, log, identity } = this.options;
    try {
      this.current = await client.get(this.path);
      const record = this.current === undefined ? undefined : ((this.current.spec ?? {}) as LeaseRecord);
      const { step, memory } = leaseStep(record, this.memory, identity, this.options.leaseDurationSeconds, Date.now());
      this.memory = memory;
      if (step.kind === 'wait') {
        if (this.leading) this.lose(`the Lease is held by ${step.holder}`);
        return;
      }
      const body = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.options.name, namespace: this.options.namespace, resourceVersion: this.current?.metadata?.resourceVersion }, spec: step.record };
      if (step.kind === 'create') await client.request('POST', resourcePath('Lease', this.options.namespace), body);
      else await client.request('PUT', this.path, body);
      this.lastRenewMs = Date.now();
      if (!this.leading) {
        this.leading = true;
        log.info({ lease: `${this.options.namespace}/${this.options.name}`, identity }, 'became the leader');
        this.options.onStartedLeading();
      }
    } catch (error) {
      if (!isConflict(error) && !isNotFound(error)) log.warn({ err: error }, 'leader election: could not read or write the Lease');
    }
    if (this.leading && Date.now() - this.lastRenewMs > this.options.renewDeadlineSeconds * 1000) this.lose('could not renew the Lease within the renew deadline');
  }

  private lose(why: string): void {
    this.leading = false;
    this.options.log.error({ why }, 'lost leadership');
    this.options.onStoppedLeading();
  }

  /** Stops trying; a leader releases the Lease so that a standby need not wait for expiry. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.loop;
    if (!this.leading) return;
    this.leading = false;
    try {
      const current = await this.options.client.get(this.path);
      const record = (current?.spec ?? {}) as LeaseRecord;
      if (current === undefined || record.holderIdentity !== this.options.identity) return;
      const body = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.options.name, namespace: this.options.namespace, resourceVersion: current.metadata?.resourceVersion }, spec: releasedRecord(record, Date.now()) };
      await this.options.client.request('PUT', this.path, body);
      this.options.log.info('released the Lease');
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not release the Lease; a standby takes over when it expires');
    }
  }
}
