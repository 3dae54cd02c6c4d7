/**
 * The YCSB driver: a load phase that writes every record once, and run phases in two modes.
 *
 * - Closed loop (maximum throughput): `concurrency` workers, each sending its next operation as
 *   soon as the previous one finished. Latency is from send to answer, so it is the latency seen at
 *   saturation, not a service level: a stalled server delays the requests that measure it.
 * - Open loop (fixed offered rate): operation i is due at t0 + i/rate whatever happened before, and
 *   its latency runs from that due time, not from when it was actually sent. A stall therefore
 *   shows as the queue of late operations behind it, which avoids coordinated omission (Tene).
 *   Operations that are due but cannot be sent (more than `inFlightMax` outstanding) wait in a
 *   backlog and keep their due time. After the schedule, the driver waits a bounded drain time;
 *   what is still unanswered then counts as incomplete and enters the histogram with its latency
 *   so far (a lower bound), so the tail is never flattered by giving up.
 *
 * An operation is one YCSB operation: a read, an update, or for workload F a read-modify-write
 * (GET, then PUT with the context the GET returned), timed as a whole as YCSB does.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as hdr from 'hdr-histogram-js';
import { ContextCache } from '../lib/load';
import type { KvClient } from './clients';
import { OPERATION_KINDS, Prng, chooseOperation, keyChooser, recordKey, type Distribution, type KeyChooser, type OperationKind, type Workload } from './generators';

const LATENCY_US_MAX = 120_000_000;
const OPEN_LOOP_TICK_MS = 1;
const LOAD_CONCURRENCY = 32;
/** The load phase's pause before it repeats a write the target refused as overloaded. */
const LOAD_RETRY_MS = 50;
/** After an overloaded open-loop cell, how long to wait for the abandoned requests to finish. */
const SETTLE_MS_MAX = 15_000;
const SETTLE_POLL_MS = 20;

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface PhaseResult {
  mode: 'closed' | 'open';
  /** Offered operations per second (open loop only). */
  offeredOps?: number;
  durationSec: number;
  /** Operations answered (successfully or not) within the phase's window. */
  completedInWindow: number;
  /** Completed operations per second over the window. */
  throughputOps: number;
  /** Successful operations completed within the window, per second: the useful work done. */
  goodputOps: number;
  /** Operations answered with something other than success, or that threw. */
  failed: number;
  /** Of the failed: those the target refused as overloaded (503) without doing them. */
  refused: number;
  /** Open loop: operations not answered by the end of the drain time. */
  incomplete: number;
  all: LatencySummary;
  byKind: Partial<Record<OperationKind, LatencySummary>>;
}

export interface RunSpec {
  client: KvClient;
  workload: Workload;
  distribution: Distribution;
  records: number;
  value: Buffer;
  seed: number;
  durationSec: number;
  /** dynamokv contexts per key, carried by updates of A and B so they replace rather than add. */
  contexts: ContextCache;
  signal: AbortSignal;
}

function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_US_MAX, numberOfSignificantValueDigits: 3 });
}

function summarize(histogram: hdr.Histogram): LatencySummary {
  const ms = (us: number): number => us / 1000;
  return {
    count: histogram.totalCount,
    p50Ms: ms(histogram.getValueAtPercentile(50)),
    p99Ms: ms(histogram.getValueAtPercentile(99)),
    p999Ms: ms(histogram.getValueAtPercentile(99.9)),
    maxMs: ms(histogram.maxValue),
    meanMs: ms(histogram.mean),
  };
}

/** Histograms and counters of one phase; hdr-histogram-js's wasm/packed variants need no destroy here. */
class Recorder {
  private readonly histograms = new Map<OperationKind, hdr.Histogram>(OPERATION_KINDS.map((kind) => [kind, newHistogram()]));
  failed = 0;
  refused = 0;

  record(kind: OperationKind, latencyMs: number, outcome: Outcome): void {
    if (outcome !== 'ok') this.failed += 1;
    if (outcome === 'refused') this.refused += 1;
    const us = Math.min(LATENCY_US_MAX, Math.max(1, Math.round(latencyMs * 1000)));
    this.histograms.get(kind)?.recordValue(us);
  }

  summaries(): { all: LatencySummary; byKind: Partial<Record<OperationKind, LatencySummary>> } {
    const all = newHistogram();
    const byKind: Partial<Record<OperationKind, LatencySummary>> = {};
    for (const [kind, histogram] of this.histograms) {
      if (histogram.totalCount === 0) continue;
      all.add(histogram);
      byKind[kind] = summarize(histogram);
    }
    return { all: summarize(all), byKind };
  }
}

/** How an operation ended: done, refused by an overloaded target (503), or failed otherwise. */
type Outcome = 'ok' | 'refused' | 'failed';

function outcomeOf(answer: { ok: boolean; refused?: boolean }): Outcome {
  return answer.ok ? 'ok' : answer.refused === true ? 'refused' : 'failed';
}

/** Executes one operation; never rejects (a thrown error is a failure). */
async function execute(spec: RunSpec, kind: OperationKind, key: string): Promise<Outcome> {
  try {
    if (kind === 'read') {
      const answer = await spec.client.read(key);
      if (answer.ok) spec.contexts.set(key, answer.context);
      return outcomeOf(answer);
    }
    let context = spec.contexts.get(key);
    if (kind === 'rmw') {
      const read = await spec.client.read(key);
      if (!read.ok) return outcomeOf(read);
      context = read.context;
    }
    const written = await spec.client.update(key, spec.value, context);
    if (written.ok) spec.contexts.set(key, written.context);
    return outcomeOf(written);
  } catch {
    return 'failed';
  }
}

interface Chooser {
  next(): { kind: OperationKind; key: string };
}

function chooser(spec: RunSpec): Chooser {
  const prng = new Prng(spec.seed);
  const keys: KeyChooser = keyChooser(spec.distribution, spec.records, prng);
  return { next: () => ({ kind: chooseOperation(spec.workload, prng), key: recordKey(keys.next()) }) };
}

export async function runClosedLoop(spec: RunSpec, concurrency: number): Promise<PhaseResult> {
  const choose = chooser(spec);
  const recorder = new Recorder();
  const startMs = performance.now();
  const endMs = startMs + spec.durationSec * 1000;
  let completed = 0;
  let succeeded = 0;
  const worker = async (): Promise<void> => {
    while (!spec.signal.aborted && performance.now() < endMs) {
      const { kind, key } = choose.next();
      const sentMs = performance.now();
      const outcome = await execute(spec, kind, key);
      const doneMs = performance.now();
      recorder.record(kind, doneMs - sentMs, outcome);
      if (doneMs > endMs) continue;
      completed += 1;
      if (outcome === 'ok') succeeded += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const durationSec = spec.durationSec;
  return {
    mode: 'closed',
    durationSec,
    completedInWindow: completed,
    throughputOps: completed / durationSec,
    goodputOps: succeeded / durationSec,
    failed: recorder.failed,
    refused: recorder.refused,
    incomplete: 0,
    ...recorder.summaries(),
  };
}

export interface OpenLoopOptions {
  rateOps: number;
  /** Operations sent and not yet answered, at most; the rest wait in the backlog (still timed). */
  inFlightMax: number;
  drainSec: number;
}

export async function runOpenLoop(spec: RunSpec, options: OpenLoopOptions): Promise<PhaseResult> {
  const choose = chooser(spec);
  const recorder = new Recorder();
  const intervalMs = 1000 / options.rateOps;
  const total = Math.max(1, Math.round(options.rateOps * spec.durationSec));
  const startMs = performance.now();
  const windowEndMs = startMs + spec.durationSec * 1000;
  const outstanding = new Map<number, { kind: OperationKind; dueMs: number }>();
  let nextIndex = 0;
  let completedInWindow = 0;
  let succeededInWindow = 0;
  let answered = 0;
  let sent = 0;
  let settled = 0;

  const send = (index: number): void => {
    const dueMs = startMs + index * intervalMs;
    const { kind, key } = choose.next();
    outstanding.set(index, { kind, dueMs });
    sent += 1;
    void execute(spec, kind, key).then((outcome) => {
      settled += 1;
      // Answers after the drain deadline were already counted as incomplete; ignore them.
      if (!outstanding.delete(index)) return;
      const doneMs = performance.now();
      recorder.record(kind, doneMs - dueMs, outcome);
      answered += 1;
      if (doneMs <= windowEndMs) {
        completedInWindow += 1;
        if (outcome === 'ok') succeededInWindow += 1;
      }
      pump();
    });
  };
  const pump = (): void => {
    if (spec.signal.aborted) return;
    const due = Math.min(total, Math.floor((performance.now() - startMs) / intervalMs) + 1);
    while (nextIndex < due && outstanding.size < options.inFlightMax) send(nextIndex++);
  };

  const drainEndMs = windowEndMs + options.drainSec * 1000;
  while (!spec.signal.aborted && answered < total && performance.now() < drainEndMs) {
    pump();
    await sleep(OPEN_LOOP_TICK_MS);
  }
  // Whatever is still outstanding or never sent is incomplete: record its latency so far.
  const nowMs = performance.now();
  let incomplete = 0;
  for (const { kind, dueMs } of outstanding.values()) {
    recorder.record(kind, nowMs - dueMs, 'failed');
    incomplete += 1;
  }
  outstanding.clear();
  for (let index = nextIndex; index < total && !spec.signal.aborted; index++) {
    recorder.record(choose.next().kind, nowMs - (startMs + index * intervalMs), 'failed');
    incomplete += 1;
  }
  // Late answers still occupy the target; let them finish (bounded) so the next cell starts clean.
  const settleEndMs = performance.now() + SETTLE_MS_MAX;
  while (settled < sent && performance.now() < settleEndMs) await sleep(SETTLE_POLL_MS);
  const durationSec = spec.durationSec;
  return {
    mode: 'open',
    offeredOps: options.rateOps,
    durationSec,
    completedInWindow,
    throughputOps: completedInWindow / durationSec,
    goodputOps: succeededInWindow / durationSec,
    failed: recorder.failed - incomplete,
    refused: recorder.refused,
    incomplete,
    ...recorder.summaries(),
  };
}

/**
 * The load phase: writes records 0..records-1 once, in order, with bounded concurrency, keeping
 * each key's context. A write refused as overloaded is repeated after a pause; any other refusal,
 * or running past `timeoutSec`, fails the load.
 */
export async function loadRecords(client: KvClient, records: number, value: Buffer, contexts: ContextCache, timeoutSec: number, signal: AbortSignal): Promise<number> {
  const startMs = performance.now();
  const deadlineMs = startMs + timeoutSec * 1000;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < records && !signal.aborted) {
      if (performance.now() > deadlineMs) throw new Error(`load phase did not finish ${records} records within ${timeoutSec} s (at ${next})`);
      const key = recordKey(next++);
      let answer = await client.update(key, value, contexts.get(key));
      // An overloaded target refuses writes it has not done (503); the load phase is not measured,
      // so it waits a little and tries again, within its deadline.
      while (answer.refused === true && performance.now() < deadlineMs && !signal.aborted) {
        await sleep(LOAD_RETRY_MS);
        answer = await client.update(key, value, contexts.get(key));
      }
      if (!answer.ok) throw new Error(`load phase: write of ${key} was refused`);
      contexts.set(key, answer.context);
    }
  };
  await Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, records) }, worker));
  return (performance.now() - startMs) / 1000;
}
