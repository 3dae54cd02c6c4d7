/**
 * The YCSB suite's results: one record per measured cell (target x workload x distribution x
 * mode/rate), written as JSON (the charts are drawn from it) and as a markdown report whose
 * headline is each target's closed-loop throughput as a ratio of the bare node:http server's.
 */
import { formatNumber, machineMarkdown, markdownTable, type MachineFacts, type Row } from '../lib/report';
import type { PhaseResult } from './driver';

export interface CellResult {
  target: string;
  label: string;
  workload: string;
  distribution: string;
  result: PhaseResult;
  /** CPU of the target's processes together over the measured phase; 100 = one core. */
  serverCpuPercent: number | undefined;
  /** CPU of the benchmark process (the load generator). */
  clientCpuPercent: number;
}

export interface TargetNote {
  target: string;
  label: string;
  /** What ran, or why it did not. */
  note: string;
  ran: boolean;
  loadSec?: number;
}

export interface SuiteReport {
  facts: MachineFacts;
  command: string;
  settings: Record<string, string | number>;
  targets: TargetNote[];
  cells: CellResult[];
  charts: string[];
  chartProblem?: string;
}

const ms = (value: number): string => formatNumber(value, value < 10 ? 2 : 1);

function cellName(cell: CellResult): string {
  return `${cell.workload} ${cell.distribution}`;
}

function ratio(mine: number | undefined, base: number | undefined): string {
  return mine === undefined || base === undefined || base <= 0 ? 'n/a' : `${(mine / base).toFixed(2)}x`;
}

function headline(report: SuiteReport): string[] {
  const closed = report.cells.filter((c) => c.result.mode === 'closed');
  if (closed.length === 0) return ['(no closed-loop cells were run)'];
  const labels = report.targets.filter((t) => t.ran).map((t) => t.label);
  const workloads = [...new Set(closed.map(cellName))];
  const CLUSTER = 'dynamokv 3 nodes N3/R2/W2';
  const ETCD = 'etcd 3 members';
  const versusEtcd = labels.includes(CLUSTER) && labels.includes(ETCD);
  const header: Row = ['workload', ...labels.map((l) => `${l} ops/s`), ...labels.filter((l) => l !== 'bare node:http').map((l) => `${l} / bare`), ...(versusEtcd ? ['3 nodes / etcd'] : [])];
  const rows = workloads.map((w) => {
    const of = (label: string): number | undefined => closed.find((c) => cellName(c) === w && c.label === label)?.result.throughputOps;
    const bare = of('bare node:http');
    return [
      w,
      ...labels.map((l) => formatNumber(of(l), 0)),
      ...labels.filter((l) => l !== 'bare node:http').map((l) => {
        const mine = of(l);
        return ratio(mine, bare);
      }),
      ...(versusEtcd ? [ratio(of(CLUSTER), of(ETCD))] : []),
    ];
  });
  return [markdownTable(header, rows)];
}

const DETAIL_HEADER: Row = ['target', 'workload', 'mode', 'offered ops/s', 'achieved ops/s', 'goodput ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'failed', 'of which 503', 'incomplete', 'server CPU %', 'loadgen CPU %'];

function detailRow(cell: CellResult): Row {
  const r = cell.result;
  return [
    cell.label,
    cellName(cell),
    r.mode,
    r.offeredOps === undefined ? '-' : String(r.offeredOps),
    formatNumber(r.throughputOps, 0),
    // Results written before goodput was measured have none.
    formatNumber(r.goodputOps as number | undefined, 0),
    ms(r.all.p50Ms),
    ms(r.all.p99Ms),
    ms(r.all.p999Ms),
    ms(r.all.maxMs),
    String(r.failed),
    String(r.refused as number | undefined ?? '-'),
    String(r.incomplete),
    formatNumber(cell.serverCpuPercent, 0),
    formatNumber(cell.clientCpuPercent, 0),
  ];
}

function kindRows(cells: readonly CellResult[]): Row[] {
  const rows: Row[] = [];
  for (const cell of cells) {
    for (const [kind, s] of Object.entries(cell.result.byKind)) {
      rows.push([cell.label, cellName(cell), cell.result.mode === 'open' ? `open ${cell.result.offeredOps}` : 'closed', kind, String(s.count), ms(s.p50Ms), ms(s.p99Ms), ms(s.p999Ms), ms(s.maxMs)]);
    }
  }
  return rows;
}

export function detailRows(cells: readonly CellResult[]): Row[] {
  return cells.map(detailRow);
}

export const DETAIL_COLUMNS = DETAIL_HEADER;

export function markdownReport(report: SuiteReport): string {
  const closed = report.cells.filter((c) => c.result.mode === 'closed');
  const open = report.cells.filter((c) => c.result.mode === 'open');
  const settings = Object.entries(report.settings).map(([k, v]) => `${k}=${v}`).join(', ');
  return [
    `# YCSB suite, ${report.facts.date.slice(0, 10)}`,
    '',
    'YCSB-style workloads (A 50/50 read/update, B 95/5, C read only, F read/read-modify-write) against every target,',
    'one target at a time, each started fresh on 127.0.0.1 and loaded with every record before its run phases. The load',
    'generator (one Node process, undici keep-alive Pools, or a small RESP client for Redis) shares the machine\'s cores',
    'with the target, so these are same-box figures; ratios to the bare node:http server are what travel between machines.',
    '',
    `Command: \`${report.command}\``,
    '',
    `Settings: ${settings}.`,
    '',
    '## Targets',
    '',
    ...report.targets.map((t) => `- **${t.label}**: ${t.ran ? t.note : `skipped: ${t.note}`}${t.loadSec === undefined ? '' : ` (load phase ${t.loadSec.toFixed(1)} s)`}`),
    '',
    '## Headline: closed-loop maximum throughput, and ratio to bare node:http',
    '',
    ...headline(report),
    '',
    '## Closed loop (fixed concurrency; latency from send, so it is the latency at saturation)',
    '',
    closed.length > 0 ? markdownTable(DETAIL_HEADER, closed.map(detailRow)) : '(none)',
    '',
    '## Open loop (fixed offered rate; latency from each operation\'s scheduled time, avoiding coordinated omission)',
    '',
    'An achieved rate below the offered one means the target could not keep up; its latencies then include the',
    'queue that built up. Incomplete operations were unanswered at the end of the drain time and are counted in the',
    'histogram with their latency so far (a lower bound).',
    '',
    open.length > 0 ? markdownTable(DETAIL_HEADER, open.map(detailRow)) : '(none)',
    '',
    '## Charts',
    '',
    ...(report.charts.length > 0 ? report.charts.map((c) => `![${c}](${c})`) : [`(no charts: ${report.chartProblem ?? 'not requested'})`]),
    '',
    '## Latency by operation',
    '',
    markdownTable(['target', 'workload', 'mode', 'operation', 'count', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms'], kindRows(report.cells)),
    '',
    '## Machine',
    '',
    machineMarkdown(report.facts),
    '',
    'Notes: an operation of F is a read or a read-modify-write (GET, then PUT with the context the GET returned), timed',
    'as one operation as YCSB does; etcd and Redis have no contexts, so their read-modify-write is a plain get then put.',
    'Updates of A and B to dynamokv carry the newest context seen for the key, so keys do not pile up siblings. CPU % is',
    'user+system time of the target\'s processes (all threads, summed over nodes or members) over the measured phase;',
    '100 % = one core, averaged over the phase including its drain. Failed counts answers other than success (or errors);',
    'they are included in the latencies; "of which 503" are operations an overloaded dynamokv refused before doing them.',
    'Achieved counts every answer within the window, goodput only the successful ones: under overload it is the useful',
    'work done, and a target that refuses cheaply keeps it near its closed-loop maximum.',
    'The open-loop sender wakes about every millisecond, so an operation can leave up to ~1 ms after its due time and',
    'that wait counts in its latency; the bare server\'s open-loop p50 shows this floor of the load generator.',
    '',
  ].join('\n');
}
