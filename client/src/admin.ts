/**
 * Cluster and admin endpoints: status, ring, members, join and leave.
 *
 * The shapes of these endpoints are still settling (issue 3), so every path and body the client
 * uses for them lives in this one module; when the node's admin API changes, only this file does.
 * Decoders are lenient about extra fields and strict about the fields they return.
 */
import type { HttpRequest } from './transport';
import { isRecord, parseJsonBody, protocolError } from './types';

export type MemberState = 'joining' | 'normal' | 'leaving' | 'left';

export interface MemberInfo {
  readonly id: string;
  readonly clientUrl: string | undefined;
  readonly peerUrl: string | undefined;
  readonly state: MemberState | string;
  /** This node's judgement of the member's liveness; undefined when the node does not say. */
  readonly up: boolean | undefined;
  readonly phi: number | undefined;
  /** Share of partition replicas the member holds, 0..1. */
  readonly ownership: number | undefined;
  /** True for the node that answered. */
  readonly self: boolean;
}

export interface RingInfo {
  readonly version: number | undefined;
  readonly partitionCount: number | undefined;
  readonly replicationFactor: number | undefined;
  readonly members: MemberInfo[];
  /** The whole answer, for fields this client does not model yet. */
  readonly raw: Record<string, unknown>;
}

export interface NodeStatus {
  readonly nodeId: string;
  readonly version: string | undefined;
  readonly uptimeSeconds: number | undefined;
  readonly raw: Record<string, unknown>;
}

export const STATUS_PATH = '/v1/status';
export const RING_PATH = '/v1/ring';
export const MEMBERS_PATH = '/v1/members';
export const READY_PATH = '/readyz';

/**
 * Asks the node at the target endpoint to join the cluster that `seed` belongs to. `seed` is the
 * seed's peer address (host:peerPort or a peer URL), passed through as given.
 */
export function joinRequest(seed: string): HttpRequest {
  return jsonPost('/v1/admin/join', { seed });
}

/** Asks the node at the target endpoint to leave the ring (itself, or the member `nodeId`). */
export function leaveRequest(nodeId?: string): HttpRequest {
  return jsonPost('/v1/admin/leave', nodeId === undefined ? {} : { node: nodeId });
}

function jsonPost(path: string, body: Record<string, unknown>): HttpRequest {
  return { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) };
}

export function decodeStatus(text: string, endpoint: string): NodeStatus {
  const raw = parseJsonBody(text, endpoint);
  if (!isRecord(raw)) throw protocolError(endpoint, 'status is not an object');
  if (typeof raw.nodeId !== 'string') throw protocolError(endpoint, 'status has no nodeId');
  return {
    nodeId: raw.nodeId,
    version: typeof raw.version === 'string' ? raw.version : undefined,
    uptimeSeconds: typeof raw.uptimeSeconds === 'number' ? raw.uptimeSeconds : undefined,
    raw,
  };
}

/** Accepts `{members: [...], ...ring fields}` or a bare array of members. */
export function decodeRing(text: string, endpoint: string): RingInfo {
  const parsed = parseJsonBody(text, endpoint);
  const raw: Record<string, unknown> = Array.isArray(parsed) ? { members: parsed } : isRecord(parsed) ? parsed : {};
  if (!Array.isArray(raw.members)) throw protocolError(endpoint, 'the ring answer has no members array');
  return {
    version: optionalNumber(raw.version),
    partitionCount: optionalNumber(raw.partitionCount),
    replicationFactor: optionalNumber(raw.replicationFactor),
    members: raw.members.map((m: unknown, index) => decodeMember(m, index, endpoint)),
    raw,
  };
}

export function decodeMembers(text: string, endpoint: string): MemberInfo[] {
  return decodeRing(text, endpoint).members;
}

function decodeMember(value: unknown, index: number, endpoint: string): MemberInfo {
  if (!isRecord(value) || typeof value.id !== 'string') throw protocolError(endpoint, `member ${index} has no id`);
  const addresses = isRecord(value.addresses) ? value.addresses : {};
  return {
    id: value.id,
    clientUrl: optionalString(value.clientUrl) ?? optionalString(addresses.client),
    peerUrl: optionalString(value.peerUrl) ?? optionalString(addresses.peer),
    state: optionalString(value.state) ?? 'unknown',
    up: typeof value.up === 'boolean' ? value.up : livenessFromString(value.liveness),
    phi: optionalNumber(value.phi),
    ownership: normaliseShare(optionalNumber(value.ownership)),
    self: value.self === true,
  };
}

function livenessFromString(value: unknown): boolean | undefined {
  if (value === 'up' || value === 'alive') return true;
  if (value === 'down' || value === 'dead' || value === 'suspect') return false;
  return undefined;
}

/** A share above 1 can only be a percentage. */
function normaliseShare(value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  return value > 1 ? value / 100 : value;
}

function optionalNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
