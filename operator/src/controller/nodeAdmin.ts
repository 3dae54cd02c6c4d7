/**
 * The operator's client of a node's admin API (HTTP on the client port, by pod IP): the ring, the
 * handoff progress, the hint backlog (with the node's own state), and the three admission
 * commands init, join and leave.
 * Answers are decoded strictly into the shapes the state machine needs; nothing unchecked escapes.
 */
import type { MemberState } from '../core/types';
import type { RingMemberView } from '../core/observed';
import { CLIENT_PORT, PEER_PORT } from '../core/names';

const CALL_TIMEOUT_MS = 5_000;
const MEMBER_STATES: readonly MemberState[] = ['joining', 'normal', 'leaving', 'left'];

export class NodeCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'NodeCallError';
  }

  /** A conflict the node expects to clear by itself (a change is pending): try again later. */
  get retryable(): boolean {
    return this.status === 409 || this.status === 503 || this.status === 0;
  }
}

export interface RingAnswer {
  readonly version: number;
  readonly members: readonly RingMemberView[];
}

export interface HandoffAnswer {
  readonly pending: number;
  readonly total: number;
}

export interface HintsAnswer {
  readonly backlog: number;
  /** Undefined when the node does not list itself (not a member yet). */
  readonly selfState: MemberState | undefined;
}

export class NodeAdmin {
  constructor(private readonly authToken: string | undefined) {}

  private async call(ip: string, method: 'GET' | 'POST', path: string, body?: object): Promise<unknown> {
    const url = `http://${ip.includes(':') ? `[${ip}]` : ip}:${CLIENT_PORT}${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.authToken !== undefined) headers.authorization = `Bearer ${this.authToken}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
    } catch (error) {
      throw new NodeCallError(0, 'UNREACHABLE', `${method} ${url}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const record = isRecord(parsed) ? parsed : {};
      const code = typeof record.code === 'string' ? record.code : `HTTP_${response.status}`;
      const message = typeof record.message === 'string' ? record.message : text.slice(0, 300);
      throw new NodeCallError(response.status, code, `${method} ${url}: ${response.status} ${code}: ${message}`);
    }
    return parsed;
  }

  async ring(ip: string): Promise<RingAnswer> {
    const answer = await this.call(ip, 'GET', '/v1/ring');
    if (!isRecord(answer) || typeof answer.version !== 'number' || !Array.isArray(answer.members)) throw new Error(`GET /v1/ring of ${ip}: unexpected answer`);
    const members = answer.members.flatMap((m): RingMemberView[] => {
      if (!isRecord(m) || typeof m.id !== 'string') return [];
      const state = MEMBER_STATES.find((s) => s === m.state);
      if (state === undefined) return [];
      return [{ id: m.id, state, up: m.up !== false, ownership: typeof m.ownership === 'number' ? m.ownership : 0, host: urlHost(m.peerUrl) }];
    });
    return { version: answer.version, members };
  }

  async handoff(ip: string): Promise<HandoffAnswer> {
    const answer = await this.call(ip, 'GET', '/v1/handoff');
    const transfers = isRecord(answer) && Array.isArray(answer.transfers) ? answer.transfers : [];
    const pending = transfers.filter((t) => !isRecord(t) || t.state !== 'done').length;
    return { pending, total: transfers.length };
  }

  /** The node's hint backlog, and its own state as it sees itself in its ring. */
  async hints(ip: string): Promise<HintsAnswer> {
    const answer = await this.call(ip, 'GET', '/v1/members');
    if (!isRecord(answer) || typeof answer.hintBacklog !== 'number' || !Number.isSafeInteger(answer.hintBacklog) || answer.hintBacklog < 0) {
      throw new Error(`GET /v1/members of ${ip}: no hintBacklog`);
    }
    const self = answer.self;
    const entry = Array.isArray(answer.members) ? answer.members.find((m) => isRecord(m) && m.id === self) : undefined;
    const selfState = isRecord(entry) ? MEMBER_STATES.find((s) => s === entry.state) : undefined;
    return { backlog: answer.hintBacklog, selfState };
  }

  async init(ip: string): Promise<void> {
    await this.call(ip, 'POST', '/v1/admin/init', {});
  }

  async join(ip: string, seedIp: string): Promise<void> {
    await this.call(ip, 'POST', '/v1/admin/join', { seed: `${seedIp}:${PEER_PORT}` });
  }

  async leave(viaIp: string, node: string): Promise<void> {
    await this.call(viaIp, 'POST', '/v1/admin/leave', { node });
  }
}

function urlHost(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  try {
    return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
