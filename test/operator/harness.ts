/**
 * The operator's test world: the real control plane (test/k8s/controlPlane.ts), the test kubelet
 * running every `dynamokv/node` container as a real node process (dist/node/src/main.js), the CRD
 * applied, and operator processes (dist/operator/src/main.js) started and killed at will.
 * Used by operator.test.ts and by run.ts (a control plane plus an operator for a human).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_MAIN, REPO_ROOT } from '../support/nodeProcess';
import { freePort } from '../support/ports';
import { startControlPlane, type ControlPlane, type KubectlResult } from '../k8s/controlPlane';
import { startKubelet, type Kubelet } from '../k8s/kubelet';

export const OPERATOR_MAIN = join(REPO_ROOT, 'dist', 'operator', 'src', 'main.js');
/** The node build the pods run; DYNAMOKV_TEST_NODE_MAIN points at another one (e.g. to try a fix). */
const POD_NODE_MAIN = process.env.DYNAMOKV_TEST_NODE_MAIN ?? NODE_MAIN;
export const CRD_FILE = join(REPO_ROOT, 'crds', 'dynamoclusters.dynamokv.io.yaml');
const OUTPUT_CHARS_MAX = 400_000;

/** Compiles when dist/ is older than any source the tests run (node, operator, test support). */
export function ensureBuilt(): void {
  const built = Math.min(...[NODE_MAIN, OPERATOR_MAIN].map((file) => (existsSync(file) ? statSync(file).mtimeMs : 0)));
  const newest = Math.max(...['node/src', 'operator/src'].map((dir) => newestMs(join(REPO_ROOT, dir))));
  if (built > newest) return;
  execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO_ROOT, 'tsconfig.json')], { stdio: 'pipe' });
}

function newestMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export interface OperatorProcess {
  readonly name: string;
  readonly metricsPort: number;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
  /** SIGTERM (graceful: releases the Lease) or SIGKILL (a crash); waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface Harness {
  readonly controlPlane: ControlPlane;
  readonly kubelet: Kubelet;
  kubectl(args: readonly string[], input?: string): Promise<KubectlResult>;
  /** kubectl that must succeed; answers stdout. */
  kubectlOk(args: readonly string[], input?: string): Promise<string>;
  startOperator(name: string, env?: Record<string, string>): Promise<OperatorProcess>;
  readonly operators: OperatorProcess[];
  diagnostics(pods?: readonly { namespace: string; name: string }[]): string;
  stop(): Promise<void>;
}

export async function startHarness(options: { log?: (line: string) => void } = {}): Promise<Harness> {
  ensureBuilt();
  const controlPlane = await startControlPlane({ log: options.log });
  let kubelet: Kubelet;
  try {
    kubelet = await startKubelet({
      kubeconfigPath: controlPlane.kubeconfigPath,
      log: options.log,
      images: { 'dynamokv/node': (container) => ({ command: process.execPath, args: [POD_NODE_MAIN, ...(container.args ?? [])] }) },
    });
  } catch (error) {
    await controlPlane.stop();
    throw error;
  }
  const operators: OperatorProcess[] = [];
  const kubectl = (args: readonly string[], input?: string) => controlPlane.kubectl(args, { input, timeoutMs: 30_000 });
  const kubectlOk = async (args: readonly string[], input?: string) => {
    const result = await kubectl(args, input);
    if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  };
  await kubectlOk(['apply', '--server-side', '-f', CRD_FILE]);
  await kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', 'crd/dynamoclusters.dynamokv.io']);

  const startOperator = async (name: string, env: Record<string, string> = {}): Promise<OperatorProcess> => {
    const metricsPort = await freePort();
    const child = spawn(process.execPath, [OPERATOR_MAIN], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        KUBECONFIG: controlPlane.kubeconfigPath,
        OPERATOR_NAMESPACE: 'default',
        METRICS_PORT: String(metricsPort),
        METRICS_HOST: '127.0.0.1',
        POD_NAME: name,
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const append = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_CHARS_MAX);
      options.log?.(`[${name}] ${chunk.toString('utf8').trimEnd()}`);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const operator: OperatorProcess = {
      name,
      metricsPort,
      child,
      exited,
      output: () => output,
      stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      },
    };
    operators.push(operator);
    return operator;
  };

  const diagnostics = (pods: readonly { namespace: string; name: string }[] = []) => {
    const tail = (text: string, chars: number) => text.slice(-chars);
    return [
      ...operators.map((o) => `===== operator ${o.name} =====\n${tail(o.output(), 8_000)}`),
      ...pods.map((p) => `===== pod ${p.namespace}/${p.name} =====\n${tail(kubelet.output(p.namespace, p.name), 3_000)}`),
      `===== kubelet =====\n${tail(kubelet.logs(), 4_000)}`,
      `===== control plane =====\n${tail(controlPlane.logs(), 4_000)}`,
    ].join('\n');
  };

  const stop = async () => {
    await Promise.all(operators.map((o) => o.stop('SIGKILL')));
    await kubelet.stop();
    await controlPlane.stop();
  };
  return { controlPlane, kubelet, kubectl, kubectlOk, startOperator, operators, diagnostics, stop };
}
