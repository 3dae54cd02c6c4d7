/**
 * Reads a V8 .cpuprofile (as written by `node --cpu-prof`) and sums self time per function, so a
 * profile of a node under load can be summarised in a table without opening DevTools.
 *
 * A profile is a tree of call frames (`nodes`) and a list of samples, each naming the node that
 * was on top of the stack; `timeDeltas[i]` is the time between sample i-1 and sample i. Sample i
 * is charged the time until the next sample, as DevTools does. Functions are keyed by name, file
 * and line, so the same function reached through different callers is counted once.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionSelfTime {
  /** `name (file:line)`, or V8's pseudo-frames such as (garbage collector) and (idle). */
  readonly name: string;
  readonly selfMs: number;
  /** Share of the time the thread was not idle. */
  readonly busyPercent: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly idleMs: number;
  readonly top: readonly FunctionSelfTime[];
}

function isCpuProfile(value: unknown): value is CpuProfile {
  if (typeof value !== 'object' || value === null) return false;
  const profile = value as Partial<CpuProfile>;
  return Array.isArray(profile.nodes) && Array.isArray(profile.samples) && Array.isArray(profile.timeDeltas);
}

/** A short, stable label: node_modules paths keep the package, our own files keep dist/... */
function frameLabel(frame: CallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  if (frame.url === '') return name;
  const file = frame.url.replace(/^file:\/\//, '');
  const inModules = file.lastIndexOf('node_modules/');
  const shortFile = inModules >= 0 ? file.slice(inModules + 'node_modules/'.length) : file.includes('/dist/') ? file.slice(file.indexOf('/dist/') + 1) : path.basename(file);
  return `${name} (${shortFile}:${frame.lineNumber + 1})`;
}

/** The `topCount` functions with the most self time, from profile text. */
export function summarizeProfile(text: string, topCount: number): ProfileSummary {
  const parsed: unknown = JSON.parse(text);
  if (!isCpuProfile(parsed)) throw new Error('not a V8 CPU profile (nodes, samples, timeDeltas expected)');
  const labelOf = new Map<number, string>(parsed.nodes.map((node) => [node.id, frameLabel(node.callFrame)]));
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  for (const [index, nodeId] of parsed.samples.entries()) {
    const us = Math.max(0, parsed.timeDeltas[index + 1] ?? 0);
    const label = labelOf.get(nodeId) ?? `(unknown node ${nodeId})`;
    selfUs.set(label, (selfUs.get(label) ?? 0) + us);
    totalUs += us;
  }
  const idleUs = selfUs.get('(idle)') ?? 0;
  const busyUs = Math.max(1, totalUs - idleUs);
  const top = [...selfUs.entries()]
    .filter(([label]) => label !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, topCount)
    .map(([name, us]) => ({ name, selfMs: us / 1000, busyPercent: (us / busyUs) * 100 }));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, top };
}

export function summarizeProfileFile(file: string, topCount: number): ProfileSummary {
  return summarizeProfile(readFileSync(file, 'utf8'), topCount);
}

/** The summary as plain text: totals, then one line per function. */
export function formatProfileSummary(summary: ProfileSummary): string {
  const busyMs = summary.totalMs - summary.idleMs;
  const lines = [
    `profiled ${(summary.totalMs / 1000).toFixed(1)} s, busy ${(busyMs / 1000).toFixed(1)} s (${((busyMs / Math.max(1, summary.totalMs)) * 100).toFixed(0)} %); top self time, % of busy:`,
  ];
  for (const [index, entry] of summary.top.entries()) {
    lines.push(`${String(index + 1).padStart(2)}. ${entry.busyPercent.toFixed(1).padStart(5)} %  ${entry.selfMs.toFixed(0).padStart(7)} ms  ${entry.name}`);
  }
  return lines.join('\n');
}
