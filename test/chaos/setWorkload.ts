/**
 * The set workload on a real cluster: concurrent clients, each adding unique elements to a few
 * set keys with the TypeScript client (DynamoClient), and the history the checker judges.
 *
 * One add: get with r=2, union every sibling's JSON array with the new element, put with w=2 and
 * the read's context (DynamoClient.update). The element counts as attempted before the put is
 * sent (a put that fails may still reach a replica) and as acknowledged only when the put
 * answered 2xx. Client k starts its endpoint list at node k, so every node coordinates, and the
 * client fails over to the others on timeouts, refused connections and 503.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoClient } from '../../client/src';
import { Prng } from '../sim/prng';
import { addedValue, emptyHistory, type SetHistory } from './setCheck';

export interface SetWorkloadOptions {
  readonly clients: number;
  /** Buckets the adds go to, chosen at random per operation (e.g. one siblings, one lww). */
  readonly buckets: readonly string[];
  readonly keysPerBucket: number;
  /** No operation starts after this long. */
  readonly durationMs: number;
  /** A bound on each client's operations, whatever the duration. */
  readonly opsPerClientMax: number;
  readonly thinkMsMax: number;
  /** One attempt against one endpoint; a paused node costs a client this long. */
  readonly attemptTimeoutMs: number;
  /** Extra attempts per request, on other endpoints first. */
  readonly retries: number;
}

export interface WorkloadStats {
  operations: number;
  ok: number;
  failed: number;
  /** Failures by client error code (TIMEOUT, UNAVAILABLE, QUORUM_UNAVAILABLE...). */
  readonly failuresByCode: Map<string, number>;
}

export function keyNames(keysPerBucket: number): string[] {
  return Array.from({ length: keysPerBucket }, (_, i) => `set${i}`);
}

export class SetWorkload {
  /** Histories by "bucket/key". */
  readonly histories = new Map<string, SetHistory>();
  readonly stats: WorkloadStats = { operations: 0, ok: 0, failed: 0, failuresByCode: new Map() };
  private readonly keys: string[];

  constructor(
    private readonly endpoints: readonly string[],
    private readonly seed: number,
    private readonly options: SetWorkloadOptions,
  ) {
    this.keys = keyNames(options.keysPerBucket);
    for (const bucket of options.buckets) for (const key of this.keys) this.histories.set(`${bucket}/${key}`, emptyHistory());
  }

  /** Runs every client until the duration is over; resolves when the last operation has ended. */
  async run(): Promise<void> {
    const deadlineMs = Date.now() + this.options.durationMs;
    const clients = Array.from({ length: this.options.clients }, (_, i) => this.runClient(i + 1, deadlineMs));
    await Promise.all(clients);
  }

  private async runClient(client: number, deadlineMs: number): Promise<void> {
    const prng = Prng.derive(this.seed, `chaos-client-${client}`);
    const first = (client - 1) % this.endpoints.length;
    const endpoints = [...this.endpoints.slice(first), ...this.endpoints.slice(0, first)];
    const dynamo = new DynamoClient({ endpoints, timeoutMs: this.options.attemptTimeoutMs, retries: this.options.retries, backoffMsBase: 100, retryAfterMsMax: 1000 });
    try {
      for (let op = 1; op <= this.options.opsPerClientMax && Date.now() < deadlineMs; op++) {
        await this.add(dynamo, prng.pick(this.options.buckets), prng.pick(this.keys), `c${client}.${op}`);
        await sleep(prng.int(0, this.options.thinkMsMax));
      }
    } finally {
      await dynamo.close();
    }
  }

  private async add(dynamo: DynamoClient, bucket: string, key: string, element: string): Promise<void> {
    const history = this.histories.get(`${bucket}/${key}`)!;
    this.stats.operations++;
    try {
      await dynamo.update(
        bucket,
        key,
        (siblings) => {
          // Attempted from the moment a value carrying it exists, before the put is sent.
          history.attempted.add(element);
          return { value: addedValue(siblings.map((s) => s.value.toString('utf8')), element), contentType: 'application/json' };
        },
        { r: 2, w: 2 },
      );
      history.acknowledged.add(element);
      this.stats.ok++;
    } catch (error) {
      this.stats.failed++;
      const code = (error as { code?: unknown }).code;
      const name = typeof code === 'string' ? code : 'OTHER';
      this.stats.failuresByCode.set(name, (this.stats.failuresByCode.get(name) ?? 0) + 1);
    }
  }
}
