/**
 * Presentation of benchmark figures: machine facts, a plain-text table for stdout and a markdown
 * document for bench/results/. Kept apart from the measuring code so every benchmark reports alike.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';

export interface MachineFacts {
  date: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  nodeVersion: string;
  kernel: string;
  commit: string;
}

function gitOutput(repoRoot: string, args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function machineFacts(repoRoot: string): MachineFacts {
  const cpuList = cpus();
  const head = gitOutput(repoRoot, ['rev-parse', '--short', 'HEAD']);
  const dirty = (gitOutput(repoRoot, ['status', '--porcelain']) ?? '').length > 0;
  let kernel = 'unknown';
  try {
    kernel = execFileSync('uname', ['-srm'], { encoding: 'utf8' }).trim();
  } catch {
    // uname is missing only on unusual systems; the report says "unknown" there.
  }
  return {
    date: new Date().toISOString(),
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    nodeVersion: process.version,
    kernel,
    commit: head === undefined ? 'no commit yet' : `${head}${dirty ? ' (with uncommitted changes)' : ''}`,
  };
}

/** A row of a results table: already formatted cells, one per column. */
export type Row = string[];

export function textTable(header: Row, rows: Row[]): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (row: Row): string => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

export function markdownTable(header: Row, rows: Row[]): string {
  const line = (row: Row): string => `| ${row.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function machineMarkdown(facts: MachineFacts): string {
  return [
    `- date: ${facts.date}`,
    `- cpu: ${facts.cpuModel}, ${facts.cores} cores, ${facts.memoryGiB} GiB memory`,
    `- node: ${facts.nodeVersion}; kernel: ${facts.kernel}`,
    `- commit: ${facts.commit}`,
  ].join('\n');
}

export function formatNumber(value: number | undefined, fractionDigits: number): string {
  return value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(fractionDigits);
}

/** Writes `text` to `file` (creating its directory) and returns the path relative to `repoRoot`. */
export function writeReport(repoRoot: string, file: string, text: string): string {
  const absolute = path.resolve(repoRoot, file);
  mkdirSync(path.dirname(absolute), { recursive: true });
  writeFileSync(absolute, text);
  return path.relative(repoRoot, absolute);
}

/** Today's date as YYYY-MM-DD (UTC), for result file names. */
export function dateStamp(): string {
  return new Date().toISOString().slice(0, 10);
}
