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
  /** Self time by where the code lives: an npm package, a Node.js core area, or our own layer. */
  readonly byGroup: readonly FunctionSelfTime[];
}

const GROUPS_SHOWN_MAX = 12;

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

/**
 * The group of a frame: `pkg:<name>` for node_modules, `node:<area>` for Node.js internals
 * (net, streams, http...), `dist:<dir>` for our compiled code, or the pseudo-frame itself.
 */
function frameGroup(frame: CallFrame): string {
  const url = frame.url;
  if (url === '') return frame.functionName.startsWith('(') ? frame.functionName : 'native (no script)';
  const inModules = url.lastIndexOf('node_modules/');
  if (inModules >= 0) {
    const parts = url.slice(inModules + 'node_modules/'.length).split('/');
    return `pkg:${parts[0]?.startsWith('@') === true ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? '?')}`;
  }
  if (url.startsWith('node:')) return `node:${url.slice('node:'.length).replace(/^internal\//, '').split('/')[0] ?? '?'}`;
  const inDist = url.indexOf('/dist/');
  if (inDist >= 0) return `dist:${path.dirname(url.slice(inDist + '/dist/'.length))}`;
  return url;
}

function ranked(selfUs: Map<string, number>, busyUs: number, count: number): FunctionSelfTime[] {
  return [...selfUs.entries()]
    .filter(([label]) => label !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, us]) => ({ name, selfMs: us / 1000, busyPercent: (us / busyUs) * 100 }));
}

/** The `topCount` functions with the most self time, from profile text. */
export function summarizeProfile(text: string, topCount: number): ProfileSummary {
  const parsed: unknown = JSON.parse(text);
  if (!isCpuProfile(parsed)) throw new Error('not a V8 CPU profile (nodes, samples, timeDeltas expected)');
  const labelOf = new Map<number, string>(parsed.nodes.map((node) => [node.id, frameLabel(node.callFrame)]));
  const groupOf = new Map<number, string>(parsed.nodes.map((node) => [node.id, frameGroup(node.callFrame)]));
  const selfUs = new Map<string, number>();
  const groupUs = new Map<string, number>();
  let totalUs = 0;
  for (const [index, nodeId] of parsed.samples.entries()) {
    const us = Math.max(0, parsed.timeDeltas[index + 1] ?? 0);
    const label = labelOf.get(nodeId) ?? `(unknown node ${nodeId})`;
    selfUs.set(label, (selfUs.get(label) ?? 0) + us);
    const group = groupOf.get(nodeId) ?? '?';
    groupUs.set(group, (groupUs.get(group) ?? 0) + us);
    totalUs += us;
  }
  const idleUs = selfUs.get('(idle)') ?? 0;
  const busyUs = Math.max(1, totalUs - idleUs);
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, top: ranked(selfUs, busyUs, topCount), byGroup: ranked(groupUs, busyUs, GROUPS_SHOWN_MAX) };
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
  lines.push('self time by where the code lives, % of busy:');
  lines.push(summary.byGroup.map((entry) => `${entry.name} ${entry.busyPercent.toFixed(1)} %`).join(', '));
  return lines.join('\n');
}
