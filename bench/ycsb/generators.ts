/**
 * The random parts of a YCSB-style workload, all driven by one seeded PRNG so that a run can be
 * repeated exactly: the key chooser (zipfian with constant 0.99, scrambled, or uniform) and the
 * operation chooser of workloads A, B, C and F (Cooper et al., SoCC 2010; YCSB `workloads/`).
 */

import { Prng } from '../../node/src/core/prng';

export { Prng };

export interface KeyChooser {
  /** A record index in [0, records). */
  next(): number;
}

export const ZIPFIAN_CONSTANT = 0.99;

function zeta(items: number, theta: number): number {
  let sum = 0;
  for (let i = 1; i <= items; i++) sum += 1 / Math.pow(i, theta);
  return sum;
}

/**
 * Gray et al.'s zipfian generator ("Quickly generating billion-record synthetic databases", 1994),
 * as YCSB's ZipfianGenerator uses it: rank 0 is the most popular item. zeta(n) is computed once
 * in O(n), which is a few milliseconds for the record counts a benchmark on one machine uses.
 */
export class ZipfianRanks {
  private readonly alpha: number;
  private readonly zetaN: number;
  private readonly eta: number;
  private readonly half: number;

  constructor(private readonly items: number, private readonly theta = ZIPFIAN_CONSTANT) {
    if (items < 1) throw new Error('a zipfian generator needs at least one item');
    const zeta2 = zeta(2, theta);
    this.zetaN = zeta(items, theta);
    this.alpha = 1 / (1 - theta);
    this.eta = (1 - Math.pow(2 / items, 1 - theta)) / (1 - zeta2 / this.zetaN);
    this.half = 1 + Math.pow(0.5, theta);
  }

  rank(uniform: number): number {
    const uz = uniform * this.zetaN;
    if (uz < 1) return 0;
    if (uz < this.half) return Math.min(1, this.items - 1);
    const rank = Math.floor(this.items * Math.pow(this.eta * uniform - this.eta + 1, this.alpha));
    return Math.min(rank, this.items - 1);
  }
}

const FNV_OFFSET_BASIS_64 = 0xcbf29ce484222325n;
const FNV_PRIME_64 = 0x100000001b3n;
const MASK_64 = (1n << 64n) - 1n;

/** FNV-1a over the 8 little-endian bytes of `value`, as YCSB's Utils.fnvhash64 does. */
export function fnv1a64(value: number): bigint {
  let hash = FNV_OFFSET_BASIS_64;
  let rest = BigInt(value);
  for (let byte = 0; byte < 8; byte++) {
    hash ^= rest & 0xffn;
    hash = (hash * FNV_PRIME_64) & MASK_64;
    rest >>= 8n;
  }
  return hash;
}

/**
 * Scrambled zipfian (YCSB's default request distribution): the popular ranks are spread over the
 * key space by hashing, so the hot keys are not k0, k1, ... and do not all land in one partition.
 * The rank-to-record table is computed once, so choosing a key costs no BigInt arithmetic.
 */
export class ScrambledZipfian implements KeyChooser {
  private readonly ranks: ZipfianRanks;
  private readonly recordOfRank: Uint32Array;

  constructor(records: number, private readonly prng: Prng, theta = ZIPFIAN_CONSTANT) {
    this.ranks = new ZipfianRanks(records, theta);
    this.recordOfRank = new Uint32Array(records);
    const modulus = BigInt(records);
    for (let rank = 0; rank < records; rank++) this.recordOfRank[rank] = Number(fnv1a64(rank) % modulus);
  }

  next(): number {
    return this.recordOfRank[this.ranks.rank(this.prng.next())] ?? 0;
  }
}

export class UniformKeys implements KeyChooser {
  constructor(private readonly records: number, private readonly prng: Prng) {}

  next(): number {
    return Math.floor(this.prng.next() * this.records);
  }
}

export type Distribution = 'zipfian' | 'uniform';
export const DISTRIBUTIONS: readonly Distribution[] = ['zipfian', 'uniform'];

export function keyChooser(distribution: Distribution, records: number, prng: Prng): KeyChooser {
  return distribution === 'zipfian' ? new ScrambledZipfian(records, prng) : new UniformKeys(records, prng);
}

/** One YCSB operation: a read, an update (blind write) or a read-modify-write. */
export type OperationKind = 'read' | 'update' | 'rmw';
export const OPERATION_KINDS: readonly OperationKind[] = ['read', 'update', 'rmw'];

export interface Workload {
  readonly name: string;
  readonly description: string;
  readonly readFraction: number;
  /** What the other operations are: updates (A, B) or read-modify-writes (F). */
  readonly otherKind: OperationKind;
}

export const WORKLOADS: Readonly<Record<string, Workload>> = {
  A: { name: 'A', description: '50/50 read/update', readFraction: 0.5, otherKind: 'update' },
  B: { name: 'B', description: '95/5 read/update', readFraction: 0.95, otherKind: 'update' },
  C: { name: 'C', description: 'read only', readFraction: 1, otherKind: 'update' },
  F: { name: 'F', description: '50/50 read/read-modify-write', readFraction: 0.5, otherKind: 'rmw' },
};

export function chooseOperation(workload: Workload, prng: Prng): OperationKind {
  return prng.next() < workload.readFraction ? 'read' : workload.otherKind;
}

export function recordKey(index: number): string {
  return `user${index}`;
}
