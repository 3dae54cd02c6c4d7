/**
 * Output formatting of the CLI. Pure functions from client results to text, unit-tested.
 */
import type { GetResult, MemberInfo, NodeStatus, RingInfo, Sibling } from '../../client/src/index';

/** True when the value should be shown as text: a textual content type, or clean UTF-8. */
export function looksTextual(sibling: Sibling): boolean {
  const type = sibling.contentType.toLowerCase();
  if (type.startsWith('text/') || /json|xml|yaml|javascript|x-www-form-urlencoded/.test(type)) return true;
  if (type.startsWith('image/') || type.startsWith('audio/') || type.startsWith('video/')) return false;
  // Control characters other than tab and line breaks, or replacement characters from invalid
  // UTF-8, mean the bytes would garble a terminal.
  const text = sibling.value.toString('utf8');
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) || code === 0xfffd) return false;
  }
  return true;
}

export function siblingsText(bucket: string, key: string, result: GetResult): string {
  const lines = [`${bucket}/${key} has ${result.values.length} siblings (concurrent values):`];
  result.values.forEach((sibling, index) => {
    lines.push('', `[${index + 1}] ${sibling.contentType}  ${sibling.lastModified.toISOString()}  ${sibling.value.length} bytes`);
    lines.push(looksTextual(sibling) ? sibling.value.toString('utf8').replace(/\n$/, '') : `<binary, ${sibling.value.length} bytes; use --json to see it as base64>`);
  });
  lines.push('', `context: ${result.context ?? '(none)'}`);
  lines.push(`Resolve with: dynamokv put ${bucket} ${key} <value> --context ${result.context ?? '<ctx>'}`);
  return `${lines.join('\n')}\n`;
}

export function getJson(result: GetResult): string {
  const values = result.values.map((s) => ({
    contentType: s.contentType,
    lastModified: s.lastModified.toISOString(),
    ...(looksTextual(s) ? { encoding: 'utf8', value: s.value.toString('utf8') } : { encoding: 'base64', value: s.value.toString('base64') }),
  }));
  return `${JSON.stringify({ found: result.found, context: result.context ?? null, values })}\n`;
}

function percent(share: number | undefined): string {
  return share === undefined ? '-' : `${(share * 100).toFixed(1)}%`;
}

function liveness(member: MemberInfo): string {
  const base = member.up === undefined ? '-' : member.up ? 'up' : 'down';
  return member.self ? `${base} (self)` : base;
}

/** Left-aligned columns separated by two spaces, header first. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function ringText(ring: RingInfo, endpoint: string): string {
  const facts = [
    ring.version === undefined ? undefined : `ring version ${ring.version}`,
    ring.partitionCount === undefined ? undefined : `${ring.partitionCount} partitions`,
    ring.replicationFactor === undefined ? undefined : `N=${ring.replicationFactor}`,
  ].filter((f) => f !== undefined);
  const heading = `${facts.length > 0 ? facts.join(', ') : 'ring'} (as seen by ${endpoint})`;
  const rows = ring.members.map((m) => [m.id, m.state, liveness(m), percent(m.ownership), m.clientUrl ?? '-', m.peerUrl ?? '-']);
  return `${heading}\n${table(['ID', 'STATE', 'LIVENESS', 'OWNERSHIP', 'CLIENT', 'PEER'], rows)}\n`;
}

/** Flattens nested status fields into "a.b: value" lines, so new fields show without code changes. */
export function statusText(status: NodeStatus): string {
  const lines: string[] = [];
  const walk = (prefix: string, value: unknown, depth: number): void => {
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && depth < 4) {
      for (const [name, inner] of Object.entries(value)) walk(prefix === '' ? name : `${prefix}.${name}`, inner, depth + 1);
      return;
    }
    lines.push(`${prefix}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  };
  walk('', status.raw, 0);
  return `${lines.join('\n')}\n`;
}

/** One transfer of GET /v1/handoff; progress fields only on its sender and receiver. */
export interface TransferInfo {
  readonly partition: number;
  readonly from: string;
  readonly to: string;
  readonly state: string;
  readonly role?: string;
  readonly keysDone?: number;
  readonly keysTotal?: number;
  readonly bytesDone?: number;
  readonly bytesPerSecond?: number;
  readonly etaSeconds?: number | null;
}

/** A text bar such as "[#####---------------]  25%"; an unknown total shows "?". */
export function progressBar(done: number, total: number, width = 20): string {
  if (total <= 0) return `[${'?'.repeat(width)}]    ?`;
  const share = Math.min(1, Math.max(0, done / total));
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${`${Math.round(share * 100)}%`.padStart(4)}`;
}

function bytesText(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** The pending transfers as a table, one progress bar each (done transfers show full bars). */
export function handoffText(transfers: readonly TransferInfo[]): string {
  if (transfers.length === 0) return 'no transfers pending\n';
  const waiting = transfers.filter((t) => t.state !== 'done').length;
  const rows = transfers.map((t) => {
    const known = t.keysTotal !== undefined && t.keysTotal > 0;
    const bar = t.state === 'done' ? progressBar(1, 1) : known ? progressBar(t.keysDone ?? 0, t.keysTotal!) : progressBar(0, 0);
    return [
      String(t.partition),
      t.from,
      t.to,
      t.state,
      bar,
      t.keysDone === undefined ? '-' : `${t.keysDone}/${known ? t.keysTotal : '?'}`,
      bytesText(t.bytesDone),
      t.bytesPerSecond === undefined ? '-' : `${bytesText(t.bytesPerSecond)}/s`,
      t.etaSeconds === undefined || t.etaSeconds === null ? '-' : `${t.etaSeconds}s`,
    ];
  });
  return `${waiting} of ${transfers.length} transfers waiting\n${table(['PARTITION', 'FROM', 'TO', 'STATE', 'PROGRESS', 'KEYS', 'BYTES', 'RATE', 'ETA'], rows)}\n`;
}

/** The pending membership change of GET /v1/ring, as the node reports it (null when none). */
interface PendingInfo {
  readonly joining?: readonly string[];
  readonly leaving?: readonly string[];
  readonly transfersTotal?: number;
  readonly transfersDone?: number;
  readonly partitions?: readonly { readonly partition: number; readonly owners: readonly string[] }[];
  readonly transfers?: readonly TransferInfo[];
}

function asPending(value: unknown): PendingInfo | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as PendingInfo) : undefined;
}

/** One line on the pending change, or '' when none is pending. */
export function pendingSummary(value: unknown): string {
  const pending = asPending(value);
  if (pending === undefined) return '';
  const who = [pending.joining?.length ? `joining ${pending.joining.join(', ')}` : '', pending.leaving?.length ? `leaving ${pending.leaving.join(', ')}` : ''].filter((s) => s !== '').join(', ');
  const moving = pending.partitions?.length ?? 0;
  return `pending change: ${who || 'membership change'}; ${pending.transfersDone ?? 0} of ${pending.transfersTotal ?? 0} transfers done, ${moving} partition${moving === 1 ? '' : 's'} changing owners (abort with \`dynamokv abort\`)\n`;
}

/** The pending change under the ring table: who joins or leaves, next owners, transfers with progress. */
export function pendingText(value: unknown): string {
  const pending = asPending(value);
  if (pending === undefined) return 'no membership change pending\n';
  const rows = (pending.partitions ?? []).map((p) => [String(p.partition), p.owners.join(', ')]);
  return `${pendingSummary(pending)}${table(['PARTITION', 'NEXT OWNERS'], rows)}\n${handoffText(pending.transfers ?? [])}`;
}
