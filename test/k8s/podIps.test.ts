/**
 * Pod IPs are distinct across kubelets (two pools sharing one lock directory stand for two jest
 * workers), never 127.0.0.x, released on request, and a lock left by a dead process is taken over
 * while one held by a live process is not.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { PodIpPool } from './podIps';

let lockDir: string;

beforeEach(() => {
  lockDir = mkdtempSync(join(tmpdir(), 'dynamokv-ip-test-'));
});

afterEach(() => rmSync(lockDir, { recursive: true, force: true }));

test('two pools on one lock directory never hand out the same address', () => {
  const first = new PodIpPool('127.0.', lockDir);
  const second = new PodIpPool('127.0.', lockDir);
  const ips = new Set<string>();
  for (let i = 0; i < 300; i++) {
    ips.add(first.allocate());
    ips.add(second.allocate());
  }
  expect(ips.size).toBe(600);
  for (const ip of ips) expect(ip).toMatch(/^127\.0\.([1-9]\d{0,2})\.([1-9]\d{0,2})$/);
  expect(readdirSync(lockDir)).toHaveLength(600);
  first.releaseAll();
  second.releaseAll();
  expect(readdirSync(lockDir)).toHaveLength(0);
});

test('a small range is used up, and a released address becomes available again', () => {
  const pool = new PodIpPool('127.0.9.', lockDir);
  const taken = Array.from({ length: 254 }, () => pool.allocate());
  expect(new Set(taken).size).toBe(254);
  expect(() => pool.allocate()).toThrow(/no free pod IP/);
  pool.release('127.0.9.17');
  expect(pool.allocate()).toBe('127.0.9.17');
});

test("a dead process's lock is taken over; a live process's lock is respected", () => {
  // A pid far above pid_max's default range exists nowhere; pid 1 always exists.
  for (let host = 1; host <= 254; host++) writeFileSync(join(lockDir, `127.0.8.${host}`), host === 100 ? '99999999' : '1');
  const pool = new PodIpPool('127.0.8.', lockDir);
  expect(pool.allocate()).toBe('127.0.8.100');
  expect(() => pool.allocate()).toThrow(/no free pod IP/);
});

test('prefixes outside loopback are refused', () => {
  expect(() => new PodIpPool('10.0.', lockDir)).toThrow(/loopback/);
  expect(() => new PodIpPool('127.0', lockDir)).toThrow(/end with/);
});
