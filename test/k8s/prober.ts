/**
 * Container probes for the test kubelet: httpGet (HTTP or HTTPS, certificate not verified, as the
 * kubelet does) and tcpSocket against the pod IP, on the probe's own schedule (initialDelaySeconds,
 * periodSeconds, timeoutSeconds, successThreshold, failureThreshold, Kubernetes' defaults when
 * unset). exec and grpc probes are not supported: they always fail, with a message saying so, so a
 * pod that relies on one never turns Ready instead of turning Ready for no reason.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';

import type { V1Container, V1Probe } from '@kubernetes/client-node';

const FIRST_PROBE_DELAY_MS_MIN = 1_000;

export interface ProbeOutcome {
  readonly ok: boolean;
  readonly message: string;
}

/** A named port resolves through the container's ports, as in the kubelet. */
function resolvePort(port: number | string | undefined, container: V1Container): number | undefined {
  if (typeof port === 'number') return port;
  if (port === undefined) return undefined;
  if (/^[0-9]+$/.test(port)) return Number(port);
  return container.ports?.find((candidate) => candidate.name === port)?.containerPort;
}

/** Runs the probe once. */
export function probeOnce(probe: V1Probe, container: V1Container, podIp: string): Promise<ProbeOutcome> {
  const timeoutMs = Math.max(1, probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet !== undefined) {
    const get = probe.httpGet;
    const port = resolvePort(get.port as number | string | undefined, container);
    if (port === undefined) return Promise.resolve({ ok: false, message: `httpGet port ${String(get.port)} not found` });
    const https = (get.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
    const headers: Record<string, string> = { 'User-Agent': 'kube-probe/1.34', Accept: '*/*' };
    for (const header of get.httpHeaders ?? []) headers[header.name] = header.value;
    const path = get.path === undefined || get.path === '' ? '/' : get.path.startsWith('/') ? get.path : `/${get.path}`;
    return httpProbe({ https, host: get.host ?? podIp, port, path, headers, timeoutMs });
  }
  if (probe.tcpSocket !== undefined) {
    const port = resolvePort(probe.tcpSocket.port as number | string | undefined, container);
    if (port === undefined) return Promise.resolve({ ok: false, message: `tcpSocket port ${String(probe.tcpSocket.port)} not found` });
    return tcpProbe(probe.tcpSocket.host ?? podIp, port, timeoutMs);
  }
  return Promise.resolve({ ok: false, message: 'only httpGet and tcpSocket probes are supported by the test kubelet' });
}

function httpProbe(target: { https: boolean; host: string; port: number; path: string; headers: Record<string, string>; timeoutMs: number }): Promise<ProbeOutcome> {
  return new Promise((resolveProbe) => {
    const send = target.https ? httpsRequest : httpRequest;
    const req = send({ host: target.host, port: target.port, path: target.path, method: 'GET', headers: target.headers, timeout: target.timeoutMs, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolveProbe({ ok: status >= 200 && status < 400, message: `HTTP probe returned ${status}` });
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${target.timeoutMs} ms`)));
    req.on('error', (error) => resolveProbe({ ok: false, message: `HTTP probe failed: ${error.message}` }));
    req.end();
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolveProbe) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolveProbe({ ok: true, message: 'connected' });
    });
    socket.once('timeout', () => socket.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    socket.once('error', (error) => resolveProbe({ ok: false, message: `TCP probe failed: ${error.message}` }));
  });
}

/**
 * Runs a probe on its schedule and reports each change of its verdict. The verdict starts as
 * `initial` (false for readiness and startup, true for liveness) and flips after successThreshold
 * consecutive successes or failureThreshold consecutive failures.
 */
export class ProbeLoop {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  private verdict: boolean;
  lastMessage = '';

  constructor(
    private readonly probe: V1Probe,
    private readonly container: V1Container,
    private readonly podIp: string,
    initial: boolean,
    private readonly onVerdict: (ok: boolean, message: string) => void,
  ) {
    this.verdict = initial;
  }

  /**
   * The first probe runs after initialDelaySeconds, but not before a second has passed: the
   * kubelet only probes a container once its runtime reported it running, about a second (one
   * PLEG relist) after the start, and probes with failureThreshold 1 rely on that.
   */
  start(): void {
    this.schedule(Math.max(FIRST_PROBE_DELAY_MS_MIN, (this.probe.initialDelaySeconds ?? 0) * 1000));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  get passing(): boolean {
    return this.verdict;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  private async tick(): Promise<void> {
    const outcome = await probeOnce(this.probe, this.container, this.podIp);
    if (this.stopped) return;
    this.lastMessage = outcome.message;
    if (outcome.ok) {
      this.successes++;
      this.failures = 0;
    } else {
      this.failures++;
      this.successes = 0;
    }
    const successThreshold = Math.max(1, this.probe.successThreshold ?? 1);
    const failureThreshold = Math.max(1, this.probe.failureThreshold ?? 3);
    if (!this.verdict && this.successes >= successThreshold) this.change(true, outcome.message);
    else if (this.verdict && this.failures >= failureThreshold) this.change(false, outcome.message);
    else if (!this.verdict && this.failures >= failureThreshold && this.failures % failureThreshold === 0) this.onVerdict(false, outcome.message);
    this.schedule(Math.max(1, this.probe.periodSeconds ?? 10) * 1000);
  }

  private change(ok: boolean, message: string): void {
    this.verdict = ok;
    this.onVerdict(ok, message);
  }
}
