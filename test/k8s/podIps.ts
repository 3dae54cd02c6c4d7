/**
 * Pod IPs for the test kubelet: distinct loopback addresses (127.0.x.y by default), so every pod can
 * bind the same container port. An address is never handed out twice while in use, also across
 * processes: two jest workers may each run a kubelet, and their pods must not meet on one address.
 * Each allocation is a lock file `<lockDir>/<ip>` created exclusively and holding the owner's pid; a
 * lock whose pid no longer exists is stale and taken over. Allocation walks the range round-robin,
 * so a freed address is not reused at once (a recreated pod usually gets a new address, as on a
 * real cluster).
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DEFAULT_LOCK_DIR = join(tmpdir(), 'dynamokv-test-kubelet-ips');

function parsePrefix(prefix: string): number[] {
  if (!prefix.endsWith('.')) throw new Error(`pod IP prefix must end with '.', got '${prefix}'`);
  const octets = prefix.slice(0, -1).split('.').map(Number);
  if (octets[0] !== 127 || octets.length < 2 || octets.length > 3 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) {
    throw new Error(`pod IP prefix must be a loopback prefix such as '127.0.' or '127.0.9.', got '${prefix}'`);
  }
  return octets;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class PodIpPool {
  private readonly prefixOctets: number[];
  private readonly candidates: number;
  private cursor = 0;
  private readonly held = new Set<string>();

  constructor(
    prefix = '127.0.',
    private readonly lockDir = DEFAULT_LOCK_DIR,
  ) {
    this.prefixOctets = parsePrefix(prefix);
    // With two free octets the third starts at 1: 127.0.0.x is where the rest of the test suite
    // (cluster tests, the control plane) binds. Host octets run 1..254.
    this.candidates = this.prefixOctets.length === 2 ? 254 * 254 : 254;
    // Processes start their walk at different points, so two kubelets starting together rarely
    // race for the same address (and never both win it, except in the stale-lock case below).
    this.cursor = (process.pid * 97) % this.candidates;
    mkdirSync(lockDir, { recursive: true });
  }

  /** A free address, locked for this process; throws when the whole range is taken. */
  allocate(): string {
    for (let attempt = 0; attempt < this.candidates; attempt++) {
      const ip = this.address(this.cursor);
      this.cursor = (this.cursor + 1) % this.candidates;
      if (ip === '127.0.0.1' || this.held.has(ip)) continue;
      if (this.tryLock(ip)) {
        this.held.add(ip);
        return ip;
      }
    }
    throw new Error(`no free pod IP left under ${this.prefixOctets.join('.')}.`);
  }

  release(ip: string): void {
    if (!this.held.delete(ip)) return;
    try {
      unlinkSync(join(this.lockDir, ip));
    } catch {
      // Already gone (a test cleaned the directory); nothing else holds it.
    }
  }

  releaseAll(): void {
    for (const ip of [...this.held]) this.release(ip);
  }

  private address(index: number): string {
    if (this.prefixOctets.length === 3) return `${this.prefixOctets.join('.')}.${index + 1}`;
    return `${this.prefixOctets.join('.')}.${Math.floor(index / 254) + 1}.${(index % 254) + 1}`;
  }

  private tryLock(ip: string): boolean {
    const path = join(this.lockDir, ip);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(path, String(process.pid), { flag: 'wx' });
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      // Held by someone: ours (another pool in this process), a live process, or a stale lock
      // left by a crashed run. Taking a stale lock over is unlink + exclusive create: two processes
      // doing that for the same address in the same instant could both succeed, which the
      // pid-dependent starting points above make unlikely enough for tests.
      let owner: number;
      try {
        owner = Number(readFileSync(path, 'utf8').trim());
      } catch {
        continue;
      }
      if (Number.isInteger(owner) && (owner === process.pid || processAlive(owner))) return false;
      try {
        unlinkSync(path);
      } catch {
        // Someone else took the stale lock over first; the next exclusive create decides.
      }
    }
    return false;
  }
}
