/**
 * A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver and
 * kube-controller-manager, built once per machine by test/k8s/build.sh and started here with
 * freshly generated certificates in a temporary directory.
 *
 * - etcd: one member, data in <dir>/etcd, fsync off (test data; it makes a busy 2-core machine
 *   much quicker and loses nothing a test needs).
 * - kube-apiserver: TLS with the generated CA; client certificates authenticate (the admin
 *   kubeconfig's user is in system:masters); authorization Node,RBAC; service account tokens signed
 *   with a generated key; services get virtual IPs from 10.96.0.0/16 that nothing ever dials. The
 *   binary carries one patch (see build.sh): Endpoints and EndpointSlices accept loopback addresses,
 *   because the test kubelet's pods live on 127.x.
 * - kube-controller-manager: the real StatefulSet, garbage collector, endpoints/endpointslice,
 *   replicaset/deployment, persistent volume binder, serviceaccount(-token), namespace and every
 *   other on-by-default controller, each with its own service account credentials, leader election
 *   off, no HTTPS port. Disabled, because they need a cloud provider or pod CIDRs this machine does
 *   not have: node-ipam-controller, node-route-controller, service-lb-controller and
 *   cloud-node-lifecycle-controller. The node lifecycle and taint eviction controllers stay on: the
 *   test kubelet renews its node Lease every 10 s, so they see a healthy node, and a kubelet that
 *   stops heartbeating gets its pods evicted as on a real cluster.
 *
 * Every process's output is kept in a bounded buffer (`logs()`), so a failing test can print it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { REPO_ROOT } from '../support/nodeProcess';
import { freePort } from '../support/ports';
import { generateCertificates, kubeconfigYaml, type ControlPlaneCertificates } from './certificates';
import { ManagedProcess } from './processes';

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ControlPlane {
  /** An admin kubeconfig (client certificate in system:masters), everything embedded. */
  readonly kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  readonly server: string;
  /** Where etcd, kube-apiserver, kube-controller-manager and kubectl live. */
  readonly binDir: string;
  /** The working directory: certificates, kubeconfigs, etcd data. */
  readonly dir: string;
  /** Runs kubectl with the admin kubeconfig; never rejects for a non-zero exit (code -1 on timeout). */
  kubectl(args: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<KubectlResult>;
  /** The buffered output of every component, labelled, for a failing test to print. */
  logs(): string;
  /** Stops every process (SIGTERM, bounded wait, SIGKILL) and removes the directory it created. */
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Working directory; a fresh temporary one (removed by stop()) when absent. */
  readonly dir?: string;
  /** Receives every output line of every component, prefixed with its name. */
  readonly log?: (line: string) => void;
}

// From the repository, also when this runs compiled from dist/ (test/k8s/run.ts does).
const BUILD_SCRIPT = join(REPO_ROOT, 'test', 'k8s', 'build.sh');
const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/16';
/** The first address of SERVICE_CLUSTER_IP_RANGE: the `kubernetes` Service's cluster IP. */
const KUBERNETES_SERVICE_IP = '10.96.0.1';
const OUTPUT_CHARS_MAX = 256_000;
const KUBECTL_OUTPUT_CHARS_MAX = 16_000_000;
const ETCD_READY_TIMEOUT_MS = 60_000;
const APISERVER_READY_TIMEOUT_MS = 120_000;
const DEFAULTS_READY_TIMEOUT_MS = 120_000;
const POLL_INTERVAL_MS = 250;
const PROBE_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = { controllerManager: 5_000, apiserver: 15_000, etcd: 10_000 };
const DISABLED_CONTROLLERS = ['node-ipam-controller', 'node-route-controller', 'service-lb-controller', 'cloud-node-lifecycle-controller'];

/**
 * Runs build.sh (it returns at once when the binaries are cached; the first build takes minutes)
 * and returns the directory holding etcd, kube-apiserver, kube-controller-manager and kubectl.
 */
export function ensureBinaries(): string {
  let stdout: string;
  try {
    stdout = execFileSync('bash', [BUILD_SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`test/k8s/build.sh failed: ${String(error)}\n${stderr.slice(-8_000)}`, { cause: error });
  }
  const binDir = stdout.trim().split('\n').pop() ?? '';
  if (binDir === '') throw new Error('test/k8s/build.sh printed no bin directory');
  return binDir;
}

interface TlsClient {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** One HTTPS GET with the admin client certificate; never rejects (status 0 when unreachable). */
function adminGet(server: string, path: string, tls: TlsClient): Promise<{ status: number; body: string }> {
  return new Promise((resolveGet) => {
    const req = request(`${server}${path}`, { method: 'GET', ca: tls.ca, cert: tls.cert, key: tls.key, timeout: PROBE_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body = (body + chunk).slice(-64_000)));
      res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolveGet({ status: 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolveGet({ status: 0, body: error.message }));
    req.end();
  });
}

function plainGet(url: string): Promise<{ status: number; body: string }> {
  return fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
    .then(async (response) => ({ status: response.status, body: await response.text() }))
    .catch((error: unknown) => ({ status: 0, body: String(error) }));
}

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

class Components {
  readonly started: Array<{ name: string; process: ManagedProcess; graceMs: number }> = [];

  constructor(private readonly log: ((line: string) => void) | undefined) {}

  start(name: string, command: string, args: readonly string[], graceMs: number, cwd: string): ManagedProcess {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? cwd };
    const log = this.log;
    const managed = ManagedProcess.start({ command, args, env, cwd, outputCharsMax: OUTPUT_CHARS_MAX, onLine: log === undefined ? undefined : (line) => log(`[${name}] ${line}`) });
    this.started.push({ name, process: managed, graceMs });
    return managed;
  }

  logs(): string {
    return this.started.map(({ name, process }) => `===== ${name} (pid ${process.pid}) =====\n${process.output.toString()}`).join('\n');
  }

  /** Stops in reverse start order: controllers before the apiserver, the apiserver before etcd. */
  async stopAll(): Promise<void> {
    for (const { process, graceMs } of [...this.started].reverse()) await process.stop(graceMs);
  }

  /** Polls `check` until it is true; fails early when a component has exited. */
  async waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const dead = this.started.find(({ process }) => !process.alive);
      if (dead !== undefined) throw new Error(`${dead.name} exited (${JSON.stringify(dead.process.exitStatus)}) while waiting for ${what}`);
      if (await check()) return;
      await sleep(POLL_INTERVAL_MS);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binDir = ensureBinaries();
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'dynamokv-k8s-'));
  mkdirSync(dir, { recursive: true });
  const components = new Components(options.log);
  try {
    const certificates = generateCertificates(mkdirIn(dir, 'pki'), KUBERNETES_SERVICE_IP);
    const server = await startEtcdAndApiserver(components, binDir, dir, certificates);
    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigYaml({ server, caCert: certificates.caCert, clientCert: certificates.adminCert, clientKey: certificates.adminKey, user: 'admin' }), { mode: 0o600 });
    startControllerManager(components, binDir, dir, server, certificates);
    const tls = { ca: readFileSync(certificates.caCert), cert: readFileSync(certificates.adminCert), key: readFileSync(certificates.adminKey) };
    // The default namespace comes from the apiserver, its default service account from the
    // serviceaccount controller: both present means kube-controller-manager is running too.
    await components.waitFor('the default namespace and service account', DEFAULTS_READY_TIMEOUT_MS, async () => (await adminGet(server, '/api/v1/namespaces/default/serviceaccounts/default', tls)).status === 200);
    return controlPlane({ server, binDir, dir, ownsDir, kubeconfigPath, components });
  } catch (error) {
    const logs = components.logs();
    await components.stopAll();
    if (ownsDir) rmSync(dir, { recursive: true, force: true });
    throw new Error(`the test control plane did not start: ${error instanceof Error ? error.message : String(error)}\n${logs}`, { cause: error });
  }
}

function mkdirIn(parent: string, name: string): string {
  const path = join(parent, name);
  mkdirSync(path, { recursive: true, mode: 0o700 });
  return path;
}

async function startEtcdAndApiserver(components: Components, binDir: string, dir: string, certificates: ControlPlaneCertificates): Promise<string> {
  const [etcdClientPort, etcdPeerPort, apiserverPort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
  const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
  components.start('etcd', join(binDir, 'etcd'), [
    '--name=dynamokv-test',
    `--data-dir=${mkdirIn(dir, 'etcd')}`,
    `--listen-client-urls=${etcdUrl}`,
    `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=dynamokv-test=${peerUrl}`,
    '--unsafe-no-fsync',
    '--log-level=warn',
  ], STOP_GRACE_MS.etcd, dir);
  await components.waitFor('etcd /health', ETCD_READY_TIMEOUT_MS, async () => (await plainGet(`${etcdUrl}/health`)).body.includes('"health":"true"'));

  const server = `https://127.0.0.1:${apiserverPort}`;
  components.start('kube-apiserver', join(binDir, 'kube-apiserver'), [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiserverPort}`,
    `--cert-dir=${mkdirIn(dir, 'apiserver')}`,
    `--tls-cert-file=${certificates.serverCert}`,
    `--tls-private-key-file=${certificates.serverKey}`,
    `--client-ca-file=${certificates.caCert}`,
    '--authorization-mode=Node,RBAC',
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${certificates.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${certificates.serviceAccountKey}`,
    '--profiling=false',
  ], STOP_GRACE_MS.apiserver, dir);
  const tls = { ca: readFileSync(certificates.caCert), cert: readFileSync(certificates.adminCert), key: readFileSync(certificates.adminKey) };
  await components.waitFor('kube-apiserver /readyz', APISERVER_READY_TIMEOUT_MS, async () => (await adminGet(server, '/readyz', tls)).status === 200);
  return server;
}

function startControllerManager(components: Components, binDir: string, dir: string, server: string, certificates: ControlPlaneCertificates): void {
  const kubeconfig = join(dir, 'controller-manager.kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml({ server, caCert: certificates.caCert, clientCert: certificates.controllerManagerCert, clientKey: certificates.controllerManagerKey, user: 'system:kube-controller-manager' }), { mode: 0o600 });
  components.start('kube-controller-manager', join(binDir, 'kube-controller-manager'), [
    `--kubeconfig=${kubeconfig}`,
    '--leader-elect=false',
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${certificates.serviceAccountKey}`,
    `--root-ca-file=${certificates.caCert}`,
    `--cluster-signing-cert-file=${certificates.caCert}`,
    `--cluster-signing-key-file=${certificates.caKey}`,
    `--controllers=*,${DISABLED_CONTROLLERS.map((name) => `-${name}`).join(',')}`,
    '--secure-port=0',
  ], STOP_GRACE_MS.controllerManager, dir);
}

function controlPlane(parts: { server: string; binDir: string; dir: string; ownsDir: boolean; kubeconfigPath: string; components: Components }): ControlPlane {
  let stopping: Promise<void> | undefined;
  return {
    kubeconfigPath: parts.kubeconfigPath,
    server: parts.server,
    binDir: parts.binDir,
    dir: parts.dir,
    kubectl: (args, options) => runKubectl(join(parts.binDir, 'kubectl'), parts.kubeconfigPath, args, options?.input, options?.timeoutMs ?? 60_000),
    logs: () => parts.components.logs(),
    stop: () => {
      stopping ??= (async () => {
        await parts.components.stopAll();
        if (parts.ownsDir) rmSync(parts.dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

function runKubectl(kubectl: string, kubeconfigPath: string, args: readonly string[], input: string | undefined, timeoutMs: number): Promise<KubectlResult> {
  return new Promise((resolveRun) => {
    const child = spawn(kubectl, [...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), KUBECONFIG: kubeconfigPath },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout = (stdout + chunk.toString('utf8')).slice(-KUBECTL_OUTPUT_CHARS_MAX)));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-KUBECTL_OUTPUT_CHARS_MAX)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolveRun({ code: 127, stdout, stderr: `${stderr}${error.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolveRun(timedOut ? { code: -1, stdout, stderr: `${stderr}\nkubectl timed out after ${timeoutMs} ms` } : { code: code ?? -1, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}
