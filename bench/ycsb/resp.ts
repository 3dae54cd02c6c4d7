/**
 * A minimal Redis client over node:net for the benchmark: GET and SET only, RESP2, several
 * connections, replies matched to commands in order. It exists so that Redis is driven by the
 * same YCSB driver as every other target (same key chooser, same open-loop timetable, same HDR
 * histograms); redis-benchmark can do neither zipfian keys nor a fixed-rate schedule.
 */
import { Socket, connect } from 'node:net';

/** Commands sent but not yet answered on one connection; past this, a command fails at once. */
const PENDING_PER_CONNECTION_MAX = 100_000;

export type Reply = Buffer | string | number | null | Error;

interface Waiter {
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

/**
 * Parses one RESP2 reply from `buffer` at `offset`; returns the reply and the offset after it, or
 * undefined when the buffer does not hold a whole reply yet. Arrays are not needed for GET/SET.
 */
export function parseReply(buffer: Buffer, offset: number): { reply: Reply; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const kind = String.fromCharCode(buffer[offset] ?? 0);
  const line = buffer.toString('latin1', offset + 1, lineEnd);
  switch (kind) {
    case '+':
      return { reply: line, end: lineEnd + 2 };
    case '-':
      return { reply: new Error(line), end: lineEnd + 2 };
    case ':':
      return { reply: Number(line), end: lineEnd + 2 };
    case '$': {
      const length = Number(line);
      if (length < 0) return { reply: null, end: lineEnd + 2 };
      const start = lineEnd + 2;
      if (buffer.length < start + length + 2) return undefined;
      return { reply: buffer.subarray(start, start + length), end: start + length + 2 };
    }
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(kind)}`);
  }
}

export function encodeCommand(parts: readonly (string | Buffer)[]): Buffer {
  const chunks: Buffer[] = [Buffer.from(`*${parts.length}\r\n`)];
  for (const part of parts) {
    const bytes = typeof part === 'string' ? Buffer.from(part) : part;
    chunks.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(chunks);
}

class RespConnection {
  private readonly waiters: Waiter[] = [];
  private head = 0;
  private pending: Buffer = Buffer.alloc(0);
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('redis connection closed')));
  }

  static open(host: string, port: number): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RespConnection(socket));
      });
    });
  }

  get inFlight(): number {
    return this.waiters.length - this.head;
  }

  send(parts: readonly (string | Buffer)[]): Promise<Reply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.inFlight >= PENDING_PER_CONNECTION_MAX) return Promise.reject(new Error('too many redis commands in flight'));
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.socket.write(encodeCommand(parts));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    for (;;) {
      let parsed: { reply: Reply; end: number } | undefined;
      try {
        parsed = parseReply(this.pending, offset);
      } catch (error) {
        this.fail(error instanceof Error ? error : new Error(String(error)));
        this.socket.destroy();
        return;
      }
      if (parsed === undefined) break;
      offset = parsed.end;
      const waiter = this.waiters[this.head++];
      waiter?.resolve(parsed.reply);
    }
    // Compact the queue now and then rather than shifting it on every reply.
    if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters.splice(0, this.head);
      this.head = 0;
    }
    // Copy the unparsed tail so the big chunk it came from can be collected.
    this.pending = offset >= this.pending.length ? Buffer.alloc(0) : Buffer.from(this.pending.subarray(offset));
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    for (let i = this.head; i < this.waiters.length; i++) this.waiters[i]?.reject(error);
    this.waiters.length = 0;
    this.head = 0;
  }
}

/** `connections` sockets; each command goes to the one with the fewest commands in flight. */
export class RespPool {
  private constructor(private readonly connections: RespConnection[]) {}

  static async open(host: string, port: number, connections: number): Promise<RespPool> {
    const opened = await Promise.all(Array.from({ length: Math.max(1, connections) }, () => RespConnection.open(host, port)));
    return new RespPool(opened);
  }

  command(parts: readonly (string | Buffer)[]): Promise<Reply> {
    let best = this.connections[0] as RespConnection;
    for (const connection of this.connections) if (connection.inFlight < best.inFlight) best = connection;
    return best.send(parts);
  }

  close(): void {
    for (const connection of this.connections) connection.close();
  }
}
