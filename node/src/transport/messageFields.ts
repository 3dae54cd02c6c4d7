/**
 * Field readers shared by the peer message decoders: each checks one field of a decoded msgpack
 * map and returns it typed, or throws PeerDecodeError naming the field.
 */

export class PeerDecodeError extends Error {
  constructor(reason: string) {
    super(`bad peer message: ${reason}`);
    this.name = 'PeerDecodeError';
  }
}

export type Fields = Record<string, unknown>;

export function record(value: unknown, what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PeerDecodeError(`${what} must be a map`);
  return value as Fields;
}
export function str(f: Fields, name: string, maxLength = 4096): string {
  const v = f[name];
  if (typeof v !== 'string' || v.length > maxLength) throw new PeerDecodeError(`${name} must be a string of at most ${maxLength} characters`);
  return v;
}
export function int(f: Fields, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = f[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new PeerDecodeError(`${name} must be an integer in ${min}..${max}`);
  return v;
}
export function bool(f: Fields, name: string): boolean {
  const v = f[name];
  if (typeof v !== 'boolean') throw new PeerDecodeError(`${name} must be a boolean`);
  return v;
}
export function bytes(f: Fields, name: string): Uint8Array {
  const v = f[name];
  if (!(v instanceof Uint8Array)) throw new PeerDecodeError(`${name} must be binary`);
  return v;
}
export function optionalStr(f: Fields, name: string): string | undefined {
  return f[name] === undefined || f[name] === null ? undefined : str(f, name, 255);
}

