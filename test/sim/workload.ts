/**
 * Clients of the simulated cluster, and the history the checker judges them by.
 *
 * Each client runs its operations one after another through a random node, as a client with a
 * list of nodes would:
 * - add: get (r=2), union the elements of every live sibling (values are JSON arrays of
 *   strings), add one unique element, put (w=2, dw=1) with the read's context. An add is
 *   acknowledged only when that put resolved.
 * - delete: get, then a tombstone with the read's context.
 * - plain put on a plain key: one unique element, without a context (a blind write that must
 *   become a sibling) or with the context of a read (which replaces what the read saw); dw is 0
 *   or 1, so some acknowledged plain writes are not durable.
 *
 * A write with a context may legitimately remove what its read saw, so the history records what
 * such writes saw before they are sent ("excused"), whether or not they are acknowledged: a
 * failed write may still have reached a replica.
 */
import type { VersionVector, VersionedObject } from '../../node/src/core/version';
import { liveSiblings } from '../../node/src/core/dvv';
import type { SimCluster } from './simCluster';
import type { Prng } from './prng';

export const BUCKET = 'sim';

export interface WorkloadOptions {
  readonly clients: number;
  readonly opsPerClient: number;
  readonly setKeys: number;
  readonly plainKeys: number;
  /** Longest pause of a client between two operations. */
  readonly thinkMsMax: number;
  /** A client gives up on an operation after this long, as an HTTP client's timeout would. */
  readonly operationTimeoutMs: number;
}

export interface KeyHistory {
  /** Every element some client tried to write here (acknowledged or not). */
  readonly attempted: Set<string>;
  /** Elements whose write was acknowledged durably (dw >= 1). */
  readonly acked: Set<string>;
  /** Elements whose write was acknowledged without durability (dw = 0). */
  readonly ackedVolatile: Set<string>;
  /** Elements a write with a context saw and did not carry forward (a delete, a plain overwrite). */
  readonly excused: Set<string>;
}

export type OperationKind = 'add' | 'delete' | 'blind-put' | 'read-put';

export interface OperationRecord {
  readonly client: number;
  readonly kind: OperationKind;
  readonly key: string;
  readonly node: string;
  readonly startMs: number;
  endMs: number;
  outcome: 'ok' | 'failed' | 'pending';
  error?: string;
  element?: string;
}

export class History {
  readonly keys = new Map<string, KeyHistory>();
  readonly operations: OperationRecord[] = [];

  key(key: string): KeyHistory {
    let history = this.keys.get(key);
    if (history === undefined) {
      history = { attempted: new Set(), acked: new Set(), ackedVolatile: new Set(), excused: new Set() };
      this.keys.set(key, history);
    }
    return history;
  }
}

/** Elements of an object's live siblings; values that are not JSON string arrays are reported by the checker. */
export function elementsOf(object: VersionedObject | undefined): string[] {
  if (object === undefined) return [];
  const elements = new Set<string>();
  for (const sibling of liveSiblings(object)) for (const element of parseValue(sibling.value) ?? []) elements.add(element);
  return [...elements].sort();
}

export function parseValue(bytes: Uint8Array): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    if (Array.isArray(parsed) && parsed.every((e) => typeof e === 'string')) return parsed as string[];
  } catch {
    // Not JSON: the checker reports it as a value no client wrote.
  }
  return undefined;
}

/** A short form of an object for violation messages: context and each sibling's dot and elements. */
export function describe(object: VersionedObject | undefined): string {
  if (object === undefined) return 'absent';
  const siblings = object.siblings.map((s) => `${s.dot.node}:${s.dot.counter}=${s.deleted ? 'deleted' : (parseValue(s.value) ?? ['?']).join(',')}`);
  return `{ctx ${JSON.stringify(object.context)} [${siblings.join(' | ')}]}`;
}

export class Workload {
  private finishedClients = 0;
  private readonly setKeyNames: string[];
  private readonly plainKeyNames: string[];

  constructor(
    private readonly cluster: SimCluster,
    private readonly prng: Prng,
    private readonly options: WorkloadOptions,
    readonly history: History,
    private readonly log?: (line: string) => void,
  ) {
    this.setKeyNames = Array.from({ length: options.setKeys }, (_, i) => `set${i}`);
    this.plainKeyNames = Array.from({ length: options.plainKeys }, (_, i) => `plain${i}`);
  }

  /** Every key the workload may touch, for the final read. */
  keys(): string[] {
    return [...this.setKeyNames, ...this.plainKeyNames];
  }

  /** Schedules every client on the virtual clock. */
  start(): void {
    for (let client = 1; client <= this.options.clients; client++) {
      this.cluster.runtime.schedule(() => void this.runClient(client), this.prng.int(0, this.options.thinkMsMax));
    }
  }

  done(): boolean {
    return this.finishedClients === this.options.clients;
  }

  private async runClient(client: number): Promise<void> {
    for (let op = 1; op <= this.options.opsPerClient; op++) {
      await this.operation(client, op);
      await this.sleep(this.prng.int(0, this.options.thinkMsMax));
    }
    this.finishedClients++;
  }

  private async operation(client: number, op: number): Promise<void> {
    const roll = this.prng.next();
    const kind: OperationKind = this.plainKeyNames.length > 0 && roll < 0.2 ? (this.prng.chance(0.5) ? 'blind-put' : 'read-put') : roll < 0.27 ? 'delete' : 'add';
    const key = kind === 'blind-put' || kind === 'read-put' ? this.prng.pick(this.plainKeyNames) : this.prng.pick(this.setKeyNames);
    const slot = this.prng.pick(this.cluster.reachable());
    const record: OperationRecord = { client, kind, key, node: slot.id, startMs: this.cluster.runtime.nowMs(), endMs: 0, outcome: 'pending' };
    this.history.operations.push(record);
    const process = slot.process;
    const element = `c${client}.${op}`;
    const finish = (outcome: 'ok' | 'failed', error?: string) => {
      record.outcome = outcome;
      record.endMs = this.cluster.runtime.nowMs();
      if (error !== undefined) record.error = error;
      this.log?.(`${record.endMs} client ${client} ${kind} ${key} via ${slot.id}${record.element ? ` element ${record.element}` : ''}: ${outcome}${error ? ` (${error})` : ''}`);
    };
    if (process === undefined) {
      finish('failed', 'connection refused');
      return;
    }
    // A client that loses its connection (the node crashed meanwhile) cannot know the outcome.
    const stillSameProcess = () => slot.process === process;
    const history = this.history.key(key);
    const dw = kind === 'blind-put' || kind === 'read-put' ? this.prng.int(0, 1) : 1;
    try {
      let context: VersionVector = {};
      let elements: string[] = [];
      if (kind !== 'blind-put') {
        const current = await this.withTimeout(process.coordinator.get({ bucket: BUCKET, key, read: { r: 2, pr: 0 }, consistent: false, conflictMode: 'siblings' }));
        if (!stillSameProcess()) throw new Error('connection lost');
        context = current?.context ?? {};
        elements = elementsOf(current);
        this.log?.(`${this.cluster.runtime.nowMs()} client ${client} ${kind} ${key} via ${slot.id} read ${JSON.stringify(context)} ${elements.join(',')}`);
      }
      let value: string[] | undefined;
      if (kind === 'add') value = [...new Set([...elements, element])].sort();
      else if (kind === 'blind-put' || kind === 'read-put') value = [element];
      if (kind === 'delete' || kind === 'read-put') for (const seen of elements) history.excused.add(seen);
      if (value !== undefined) {
        record.element = element;
        history.attempted.add(element);
      }
      const newValue = {
        value: value === undefined ? new Uint8Array(0) : Buffer.from(JSON.stringify(value)),
        contentType: value === undefined ? 'application/octet-stream' : 'application/json',
        // The node that takes the request stamps the time, with its own (skewed) clock.
        lastModifiedMs: process.runtime.nowMs(),
        deleted: value === undefined,
      };
      await this.withTimeout(process.coordinator.put({ bucket: BUCKET, key, value: newValue, context, write: { w: 2, dw, pw: 0 }, conflictMode: 'siblings' }));
      if (!stillSameProcess()) throw new Error('connection lost');
      if (value !== undefined) (dw > 0 ? history.acked : history.ackedVolatile).add(element);
      finish('ok');
    } catch (error) {
      finish('failed', (error as Error).message);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.cluster.runtime.schedule(resolve, ms));
  }

  private withTimeout<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.cluster.runtime.schedule(() => reject(new Error(`client timeout after ${this.options.operationTimeoutMs} ms`)), this.options.operationTimeoutMs);
      promise.then(
        (value) => {
          cancel();
          resolve(value);
        },
        (error: unknown) => {
          cancel();
          reject(error);
        },
      );
    });
  }
}
