/**
 * The simulator's own parts: the simulated network keeps virtual time, loses and duplicates
 * messages and partitions nodes as its callers expect, and the simulated disk loses exactly the
 * unsynced writes a crash may lose. Each test drives the part directly on a virtual clock.
 */
import { VirtualRuntime } from '../../node/src/cluster/virtualRuntime';
import { StorageClosedError } from '../../node/src/storage/engine';
import { PeerCallError } from '../../node/src/transport/peerClient';
import type { PeerHandlers } from '../../node/src/transport/peerServer';
import { Prng } from './prng';
import { settleOnce } from './simCluster';
import { SimDisk } from './simDisk';
import { CALM_NETWORK, SimNetwork, type NetworkFaults } from './simNetwork';

const A = 'http://a.peer';
const B = 'http://b.peer';
const FIXED_10MS: NetworkFaults = { ...CALM_NETWORK, delayMsMin: 10, delayMsMax: 10 };

function pingHandlers(id: string, onPing: () => void = () => undefined): PeerHandlers {
  return {
    ping: async () => {
      onPing();
      return { id, ringVersion: 1 };
    },
  } as unknown as PeerHandlers;
}

function setup(faults: NetworkFaults) {
  const runtime = new VirtualRuntime(1, 0);
  const delivered: string[] = [];
  const network = new SimNetwork(runtime, new Prng(7), faults, (line) => delivered.push(line));
  network.addHost(A, 'a');
  network.addHost(B, 'b');
  return { runtime, network, delivered, advance: (ms: number) => runtime.advanceBy(ms, settleOnce) };
}

/** Watches a promise without awaiting it, so a test can look at it between clock steps. */
function watch<T>(promise: Promise<T>): { state: () => 'pending' | 'resolved' | 'rejected'; value: () => T | undefined; error: () => unknown } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  let value: T | undefined;
  let error: unknown;
  promise.then(
    (v) => {
      state = 'resolved';
      value = v;
    },
    (e: unknown) => {
      state = 'rejected';
      error = e;
    },
  );
  return { state: () => state, value: () => value, error: () => error };
}

describe('simulated network', () => {
  test('a call is answered after the request and the response each took their delay of virtual time', async () => {
    const { network, advance, delivered } = setup(FIXED_10MS);
    network.register(B, pingHandlers('b'));
    network.register(A, pingHandlers('a'));
    const call = watch(network.transportFor(A).call(B, 'ping', { from: 'a' }, 500));
    await advance(19);
    expect(call.state()).toBe('pending');
    await advance(1);
    expect(call.state()).toBe('resolved');
    expect(call.value()).toEqual({ id: 'b', ringVersion: 1 });
    expect(delivered).toEqual(['10 a>b ping request', '20 b>a ping response']);
  });

  test('a dropped message fails the call as unreachable after its timeout in virtual time, not before', async () => {
    const { network, advance } = setup({ ...FIXED_10MS, dropProbability: 1 });
    network.register(B, pingHandlers('b'));
    network.register(A, pingHandlers('a'));
    const call = watch(network.transportFor(A).call(B, 'ping', { from: 'a' }, 300));
    await advance(299);
    expect(call.state()).toBe('pending');
    await advance(1);
    expect(call.state()).toBe('rejected');
    expect(call.error()).toBeInstanceOf(PeerCallError);
    expect((call.error() as PeerCallError).unreachable).toBe(true);
    expect(network.stats.timedOut).toBe(1);
  });

  test('a partition cuts both directions until it heals', async () => {
    const { network, advance } = setup(FIXED_10MS);
    network.register(A, pingHandlers('a'));
    network.register(B, pingHandlers('b'));
    network.partition([A], [B]);
    const there = watch(network.transportFor(A).call(B, 'ping', { from: 'a' }, 100));
    const back = watch(network.transportFor(B).call(A, 'ping', { from: 'b' }, 100));
    await advance(100);
    expect([there.state(), back.state()]).toEqual(['rejected', 'rejected']);
    network.healPartitions();
    const healed = watch(network.transportFor(A).call(B, 'ping', { from: 'a' }, 100));
    await advance(20);
    expect(healed.state()).toBe('resolved');
  });

  test('a crashed process is refused at once, and a call it made before dying is never answered', async () => {
    const { network, advance } = setup(FIXED_10MS);
    let pingsAtB = 0;
    network.register(A, pingHandlers('a'));
    network.register(B, pingHandlers('b', () => pingsAtB++));
    const oldTransport = network.transportFor(A);
    const inFlight = watch(oldTransport.call(B, 'ping', { from: 'a' }, 500));
    network.crash(A);
    await advance(20);
    expect(pingsAtB).toBe(1);
    expect(inFlight.state()).toBe('pending'); // the answer went to a dead process
    network.crash(B);
    network.register(A, pingHandlers('a'));
    const refused = watch(network.transportFor(A).call(B, 'ping', { from: 'a' }, 500));
    await advance(20);
    expect(refused.state()).toBe('rejected');
    expect((refused.error() as PeerCallError).message).toMatch(/refused/);
    const fromDead = watch(oldTransport.call(B, 'ping', { from: 'a' }, 500));
    await settleOnce();
    expect(fromDead.state()).toBe('rejected');
  });

  test('a duplicated request runs the handler twice but the caller sees one answer', async () => {
    const { network, advance } = setup({ ...FIXED_10MS, duplicateProbability: 1 });
    let pingsAtB = 0;
    network.register(A, pingHandlers('a'));
    network.register(B, pingHandlers('b', () => pingsAtB++));
    const call = watch(network.transportFor(A).call(B, 'ping', { from: 'a' }, 500));
    await advance(40);
    expect(pingsAtB).toBe(2);
    expect(call.state()).toBe('resolved');
    expect(network.stats.duplicated).toBeGreaterThanOrEqual(2);
  });
});

describe('simulated disk', () => {
  const key = (n: number) => Uint8Array.of(0x01, n);
  const value = (n: number) => Uint8Array.of(n);
  /** A generator whose crashes keep none of the unsynced writes. */
  const loseAll = { int: (low: number) => low } as unknown as Prng;

  test('a crash loses unsynced writes, keeps synced ones and everything a sync write flushed before it', async () => {
    const disk = new SimDisk();
    await disk.format();
    const first = disk.open();
    await first.put(key(1), value(1));
    await first.put(key(2), value(2), { sync: true });
    await first.put(key(3), value(3));
    expect(await first.get(key(3))).toEqual(value(3));
    await disk.crash(loseAll);
    const second = disk.open();
    expect(await second.get(key(1))).toEqual(value(1));
    expect(await second.get(key(2))).toEqual(value(2));
    expect(await second.get(key(3))).toBeUndefined();
    expect(disk.unsyncedLost).toBe(1);
  });

  test('the handle of a crashed incarnation refuses every call', async () => {
    const disk = new SimDisk();
    await disk.format();
    const first = disk.open();
    await disk.crash(loseAll);
    await expect(first.put(key(1), value(1))).rejects.toBeInstanceOf(StorageClosedError);
    await expect(first.get(key(1))).rejects.toBeInstanceOf(StorageClosedError);
    expect(() => first.scan({ gte: key(0), lt: key(9) })).toThrow(StorageClosedError);
  });
});
