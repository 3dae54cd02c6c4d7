/**
 * The handoff receiver on real in-memory storage: a client write racing a batch is never lost
 * whichever reaches the key first; the cursor advances only over an unbroken chain of applied
 * batches, whatever order they arrive in, and survives a restart; the closing batch refuses a
 * gap; a busy receiver asks senders to wait, and a full apply queue refuses the next batch.
 */
import { EMPTY_OBJECT, update } from '../core/dvv';
import type { VersionedObject } from '../core/version';
import { rocksDbEngineFactory } from '../storage/conformance';
import type { StorageEngine } from '../storage/engine';
import { OverloadedError } from '../storage/keyLocks';
import { dataKey, partitionDataRange } from '../storage/keys';
import { MemoryEngine } from '../storage/memory';
import { encodeObject } from '../storage/objectCodec';
import { ObjectStore } from '../storage/objectStore';
import type { PeerTransport } from '../transport/peerClient';
import type { HandoffBatchRequest } from '../transport/handoffMessages';
import { Coordinator } from './coordinator';
import { DEFAULT_RECEIVER_OPTIONS, HandoffReceiver, type HandoffReceiverOptions } from './handoffReceiver';
import type { Membership } from './membership';
import { realRuntime, type Runtime } from './runtime';

const P = 3;
const OPTIONS = { conflictMode: 'siblings', maxSiblings: 10 } as const;
const bytes = (s: string) => new TextEncoder().encode(s);
const valueOf = (s: { value: Uint8Array }) => new TextDecoder().decode(s.value);

/** The object an old owner holds for `key`: one value written by its own actor. */
function handedOver(key: string): VersionedObject {
  return update(EMPTY_OBJECT, {}, 'old', { value: bytes(`handed-${key}`), contentType: 'text/plain', lastModifiedMs: 1, deleted: false }, OPTIONS).object;
}

interface Node {
  readonly engine: StorageEngine;
  readonly store: ObjectStore;
  readonly coordinator: Coordinator;
  receiver(options?: Partial<HandoffReceiverOptions>, runtime?: Runtime): HandoffReceiver;
}

/** A receiving node's storage and merge path over `engine` (opened here when it is a fresh MemoryEngine). */
async function node(engine: StorageEngine = new MemoryEngine()): Promise<Node> {
  if (engine instanceof MemoryEngine) await engine.open();
  const store = new ObjectStore(engine, { maxLockWaiters: 100 });
  // Only applyReplica is used here: it needs the store and the merge options, not the network.
  const coordinator = new Coordinator(store, {} as Membership, {} as PeerTransport, () => 'receiver', { readRepair: () => undefined, siblingsDropped: () => undefined, forwarded: () => undefined }, { replicaTimeoutMs: 100, forwardHopsMax: 1, maxSiblings: 10 });
  return {
    engine,
    store,
    coordinator,
    receiver: (options = {}, runtime = realRuntime) => new HandoffReceiver(engine, coordinator, runtime, () => 'siblings', { ...DEFAULT_RECEIVER_OPTIONS, store, ...options }),
  };
}

function batch(keys: readonly string[], after: Uint8Array | null | undefined, cursorKeyName?: string): HandoffBatchRequest {
  const cursor = dataKey(P, 'b', cursorKeyName ?? keys[keys.length - 1]!);
  return { transferId: 't1', partition: P, entries: keys.map((key) => ({ bucket: 'b', key, object: encodeObject(handedOver(key)) })), checksum: 0, cursor, ...(after === undefined ? {} : { after }) };
}

const names = (from: number, count: number) => Array.from({ length: count }, (_, i) => `k${String(from + i).padStart(3, '0')}`);

/** What a client write does on the receiving node: the coordinator's local stamp, under the key's lock. */
function clientWrite(store: ObjectStore, key: string): Promise<VersionedObject | undefined> {
  return store.update(P, 'b', key, (current) => update(current ?? EMPTY_OBJECT, {}, 'client', { value: bytes('client'), contentType: 'text/plain', lastModifiedMs: 2, deleted: false }, OPTIONS).object);
}

const eventLoopTurns = async (count: number) => {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

describe('handoff receiver', () => {
  test('a client write racing a handoff batch on the same key is never lost, at any point of the batch', async () => {
    // On RocksDB, whose writes wait for the next turn (group commit), so a read-then-write that
    // took no lock would really interleave with another (the memory engine writes at once). The
    // batch has two chunks of two keys, the raced key in the first. The write starts before the
    // batch, or after `turns` event-loop turns and `microtasks` promise steps, so it meets the
    // batch at every step of its read-and-write of the key.
    const fixture = await rocksDbEngineFactory().create();
    try {
      const starts = [{ before: true, turns: 0, microtasks: 0 }];
      for (let turns = 0; turns <= 3; turns++) for (let microtasks = 0; microtasks <= 10; microtasks++) starts.push({ before: false, turns, microtasks });
      const firstWriter = new Set<string>();
      for (const [i, start] of starts.entries()) {
        const n = await node(fixture.engine);
        const changes: string[] = [];
        n.store.onObjectChanged = (_p, _b, key, _before, after) => changes.push(`${key}=${after!.siblings.map(valueOf).sort().join('+')}`);
        const raced = `raced${i}`;
        const keys = [`a${i}`, raced, `b${i}`, `c${i}`];
        if (start.before) await clientWrite(n.store, raced);
        const receiving = n.receiver({ chunkKeys: 2 }).receive({ ...batch(keys, null), transferId: `t${i}` });
        await eventLoopTurns(start.turns);
        for (let step = 0; step < start.microtasks; step++) await Promise.resolve();
        const writing = start.before ? Promise.resolve(undefined) : clientWrite(n.store, raced);
        await Promise.all([receiving, writing]);
        const stored = (await n.store.read(P, 'b', raced))!;
        expect({ start, values: stored.siblings.map(valueOf).sort() }).toEqual({ start, values: ['client', `handed-${raced}`] });
        for (const key of [`a${i}`, `b${i}`, `c${i}`]) expect((await n.store.read(P, 'b', key))?.siblings.map(valueOf)).toEqual([`handed-${key}`]);
        // The tree observer saw every change: each plain key once, the raced key twice (first
        // writer, then the merge or the write on top), ending with both values.
        const racedChanges = changes.filter((c) => c.startsWith(`${raced}=`));
        expect(racedChanges.length).toBe(2);
        expect(racedChanges[1]).toBe(`${raced}=client+handed-${raced}`);
        expect(changes.filter((c) => !c.startsWith(`${raced}=`)).length).toBe(3);
        expect(n.store.lockedKeyCount()).toBe(0);
        firstWriter.add(racedChanges[0] === `${raced}=client` ? 'client' : 'batch');
      }
      // Both orders happened: the write reached the key before the batch in some runs, after it in others.
      expect([...firstWriter].sort()).toEqual(['batch', 'client']);
    } finally {
      await fixture.dispose();
    }
  });

  test('keys without a copy are stored as received; a key with a copy is merged, not overwritten', async () => {
    const n = await node();
    await clientWrite(n.store, 'k001');
    const request = batch(names(0, 4), null);
    await n.receiver().receive(request);
    expect([...(await n.engine.get(dataKey(P, 'b', 'k000')))!]).toEqual([...request.entries[0]!.object]);
    expect((await n.store.read(P, 'b', 'k001'))!.siblings.map(valueOf).sort()).toEqual(['client', 'handed-k001']);
    expect(await n.engine.count(partitionDataRange(P))).toBe(4);
  });

  test('batches applied out of order advance the cursor only over an unbroken chain, which survives a restart', async () => {
    const n = await node();
    const receiver = n.receiver();
    const first = batch(names(0, 3), null);
    const second = batch(names(3, 3), first.cursor);
    const third = batch(names(6, 3), second.cursor);
    // The second and third arrive first (two connections): applied, but the cursor cannot move.
    expect((await receiver.receive(third)).cursor).toBeNull();
    expect((await receiver.receive(second)).cursor).toBeNull();
    expect((await receiver.status('t1')).cursor).toBeNull();
    expect(await n.engine.count(partitionDataRange(P))).toBe(6);
    // The first closes the gap: the chain now reaches the third's cursor.
    expect([...(await receiver.receive(first)).cursor!]).toEqual([...third.cursor]);
    // A restarted receiver starts from the stored cursor, and the closing batch confirms it.
    const restarted = (await node(n.engine)).receiver();
    expect([...(await restarted.status('t1')).cursor!]).toEqual([...third.cursor]);
    const closing: HandoffBatchRequest = { transferId: 't1', partition: P, entries: [], checksum: 0, cursor: third.cursor, after: third.cursor };
    expect([...(await restarted.receive(closing)).cursor!]).toEqual([...third.cursor]);
  });

  test('the closing batch refuses a chain with a gap; a re-sent batch with other boundaries still joins the chain', async () => {
    const n = await node();
    const receiver = n.receiver();
    const first = batch(names(0, 4), null);
    await receiver.receive(first);
    // A batch beyond a gap (the one before it was lost with a failed request).
    const lost = batch(names(4, 4), first.cursor);
    const beyond = batch(names(8, 4), lost.cursor);
    await receiver.receive(beyond);
    const closing = (cursor: Uint8Array): HandoffBatchRequest => ({ transferId: 't1', partition: P, entries: [], checksum: 0, cursor, after: cursor });
    await expect(receiver.receive(closing(beyond.cursor))).rejects.toThrow(/missing/);
    // The sender resumes from the stored cursor with different cut points: k002..k005 overlap
    // what was applied and reach the batch beyond the gap, so the chain covers everything.
    expect([...(await receiver.status('t1')).cursor!]).toEqual([...first.cursor]);
    const resent = batch(names(2, 6), dataKey(P, 'b', 'k001'));
    expect([...(await receiver.receive(resent)).cursor!]).toEqual([...beyond.cursor]);
    expect([...(await receiver.receive(closing(beyond.cursor))).cursor!]).toEqual([...beyond.cursor]);
    expect(await n.engine.count(partitionDataRange(P))).toBe(12);
  });

  test('a batch without `after` (an older sender) sets the cursor as before', async () => {
    const n = await node();
    const receiver = n.receiver();
    const request = batch(names(0, 2), undefined);
    expect([...(await receiver.receive(request)).cursor!]).toEqual([...request.cursor]);
    expect([...(await receiver.status('t1')).cursor!]).toEqual([...request.cursor]);
  });

  test('an event loop held up between chunks makes the receiver ask for a pause; an idle one does not', async () => {
    const n = await node();
    // Every zero-delay timer fires 30 ms late, as if other work held the loop that long.
    let clockMs = 0;
    const slow: Runtime = { ...realRuntime, nowMs: () => clockMs, schedule: (task) => realRuntime.schedule(() => ((clockMs += 30), task()), 0) };
    const busy = n.receiver({ chunkKeys: 1, lagMsHigh: 10, retryAfterMsMax: 500 }, slow);
    const reply = await busy.receive(batch(names(0, 8), null));
    expect(busy.turnDelayMs()).toBeGreaterThan(10);
    expect(reply.retryAfterMs).toBeGreaterThan(0);
    expect(reply.retryAfterMs).toBeLessThanOrEqual(500);
    // A clock that never moves: no turn ever looks late.
    const idle = (await node()).receiver({ chunkKeys: 1 }, { ...realRuntime, nowMs: () => 0 });
    expect((await idle.receive(batch(names(0, 8), null))).retryAfterMs).toBeUndefined();
  });

  test('batches wait for the apply slot in arrival order; one more than queuedBatchesMax is refused', async () => {
    const n = await node();
    const receiver = n.receiver({ queuedBatchesMax: 1 });
    const applying = receiver.receive({ ...batch(names(0, 2), null), transferId: 'a' });
    const waiting = receiver.receive({ ...batch(names(2, 2), null), transferId: 'b' });
    await expect(receiver.receive({ ...batch(names(4, 2), null), transferId: 'c' })).rejects.toThrow(OverloadedError);
    await Promise.all([applying, waiting]);
    expect(await n.engine.count(partitionDataRange(P))).toBe(4);
  });
});
