/**
 * promtool from Debian's prometheus package, installed on first use by ensure-promtool.sh (a fresh
 * CI machine lacks it).
 */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { REPO_ROOT } from '../support/nodeProcess';

const ENSURE_SCRIPT = join(REPO_ROOT, 'test', 'monitoring', 'ensure-promtool.sh');
/** apt-get on a fresh machine: package lists plus one package. */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const PROMTOOL_TIMEOUT_MS = 60_000;

let promtoolPath: string | undefined;

export function promtoolBinary(): string {
  if (promtoolPath === undefined) {
    const output = execFileSync('bash', [ENSURE_SCRIPT], { encoding: 'utf8', timeout: INSTALL_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'inherit'] });
    promtoolPath = output.trim().split('\n').pop() ?? 'promtool';
  }
  return promtoolPath;
}

export interface PromtoolResult {
  readonly code: number;
  /** stdout and stderr together: promtool splits its report between them. */
  readonly output: string;
}

export function promtool(args: readonly string[], cwd = REPO_ROOT): Promise<PromtoolResult> {
  const binary = promtoolBinary();
  return new Promise((resolve) => {
    execFile(binary, [...args], { encoding: 'utf8', timeout: PROMTOOL_TIMEOUT_MS, cwd }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}
