/**
 * Port allocation for tests and benchmarks that start real processes.
 *
 * Asking the kernel for port 0 and releasing it is racy: the port comes from the ephemeral range,
 * and in the moment between release and the node's own bind, any outgoing connection on the
 * machine may take it as its source port (CI saw exactly that: EADDRINUSE on a node's start).
 * So ports here come from below the ephemeral range, where the kernel never hands out source
 * ports, and each jest worker (or other process) walks its own block, so two workers never offer
 * the same port. A port is still probed before it is handed out, in case something else holds it.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOWEST_PORT = 10_000;
const BLOCK_SIZE = 1_500;
const DEFAULT_EPHEMERAL_LOW = 32_768;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST_PORT + BLOCK_SIZE ? low : DEFAULT_EPHEMERAL_LOW;
  } catch {
    return DEFAULT_EPHEMERAL_LOW;
  }
}

const blocks = Math.max(1, Math.floor((ephemeralLow() - LOWEST_PORT) / BLOCK_SIZE));
// Jest numbers its workers from 1; any other process (a benchmark, the soak command) takes a block
// from its pid, which keeps two such processes apart with high probability.
// DYNAMOKV_PORT_BLOCK pins the block, so two jest runs at once (each with worker 1) stay apart.
const workerId = Number(process.env.JEST_WORKER_ID ?? '0');
const pinnedBlock = Number(process.env.DYNAMOKV_PORT_BLOCK ?? 'NaN');
const blockIndex = Number.isInteger(pinnedBlock) && pinnedBlock >= 0 ? pinnedBlock % blocks : workerId > 0 ? (workerId - 1) % blocks : process.pid % blocks;
const blockStart = LOWEST_PORT + blockIndex * BLOCK_SIZE;
// Start at a pid-dependent offset so a rerun right after a crash does not meet its own leftovers.
let nextOffset = process.pid % BLOCK_SIZE;

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port no other worker is offered, free on `host` right now, and outside the ephemeral range. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < BLOCK_SIZE; attempt++) {
    const port = blockStart + (nextOffset % BLOCK_SIZE);
    nextOffset++;
    if (await canListen(port, host)) return port;
  }
  throw new Error(`no free port in ${blockStart}-${blockStart + BLOCK_SIZE - 1} on ${host}`);
}

/** `count` consecutive ports, all free right now (for launchers that take a base port). */
export async function freePortBlock(count: number, host = '127.0.0.1'): Promise<number> {
  if (count > BLOCK_SIZE) throw new Error(`cannot allocate ${count} consecutive ports (block size ${BLOCK_SIZE})`);
  for (let attempt = 0; attempt < BLOCK_SIZE; attempt++) {
    if ((nextOffset % BLOCK_SIZE) + count > BLOCK_SIZE) nextOffset += BLOCK_SIZE - (nextOffset % BLOCK_SIZE);
    const base = blockStart + (nextOffset % BLOCK_SIZE);
    nextOffset += count;
    let free = true;
    for (let i = 0; i < count && free; i++) free = await canListen(base + i, host);
    if (free) return base;
  }
  throw new Error(`found no ${count} consecutive free ports in ${blockStart}-${blockStart + BLOCK_SIZE - 1}`);
}
