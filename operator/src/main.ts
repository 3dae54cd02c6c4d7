/**
 * The operator's entry point: configuration, /metrics and /healthz, leader election, and the
 * controller (started only while this process leads). Exit codes: 0 after SIGTERM/SIGINT,
 * 1 on a runtime failure or lost leadership (the Deployment restarts the process, which then
 * stands by), 2 on invalid configuration.
 */
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import pino from 'pino';
import { Controller } from './controller/controller';
import { KubeClient } from './kube/client';
import { LeaderElector } from './kube/leaderElection';
import { OperatorConfigError, helpText, loadOperatorConfig, type OperatorConfig } from './config';
import { OperatorMetrics } from './metrics';

const EXIT_FAILURE = 1;
const EXIT_BAD_CONFIG = 2;
/** Longest wait for in-flight reconciles and the Lease release on shutdown. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

function readConfig(): OperatorConfig {
  try {
    const config = loadOperatorConfig(process.argv.slice(2), process.env, hostname(), process.pid);
    if (config === 'help') {
      process.stdout.write(`${helpText()}\n`);
      process.exit(0);
    }
    return config;
  } catch (error) {
    if (!(error instanceof OperatorConfigError)) throw error;
    process.stderr.write(`dynamokv-operator: ${error.message}\n`);
    process.exit(EXIT_BAD_CONFIG);
  }
}

function startHttp(config: OperatorConfig, metrics: OperatorMetrics, healthy: () => boolean): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method === 'GET' && path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500).end(String(error)),
      );
      return;
    }
    if (request.method === 'GET' && (path === '/healthz' || path === '/readyz')) {
      const ok = healthy();
      response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'unhealthy' }));
      return;
    }
    response.writeHead(404, { 'content-type': 'application/json' }).end('{"status":"not found"}');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.metricsPort, config.metricsHost, () => resolve(server));
  });
}

async function main(): Promise<void> {
  const config = readConfig();
  const log = pino({ level: config.logLevel, base: { component: 'dynamokv-operator', identity: config.identity } });
  const metrics = new OperatorMetrics();
  const client = await KubeClient.create({ kubeconfigPath: config.kubeconfig });
  log.info({ server: client.server.origin, namespaces: config.watchNamespaces, leaderElection: config.leaderElection }, 'starting');
  const controller = new Controller({
    client, log, metrics, namespaces: config.watchNamespaces, defaultImage: config.defaultNodeImage, identity: config.identity,
    workers: config.workers, resyncIntervalMs: config.resyncIntervalSeconds * 1000,
  });
  let failed = false;
  const server = await startHttp(config, metrics, () => !failed);
  log.info({ port: config.metricsPort, host: config.metricsHost }, 'serving /metrics and /healthz');

  const lead = () => {
    metrics.isLeader.set(1);
    controller.start().catch((error: unknown) => {
      failed = true;
      log.fatal({ err: error }, 'the controller failed');
      process.exit(EXIT_FAILURE);
    });
  };
  const elector = config.leaderElection
    ? new LeaderElector({
        client, log, namespace: config.operatorNamespace, name: config.leaseName, identity: config.identity,
        leaseDurationSeconds: config.leaseDurationSeconds, renewDeadlineSeconds: config.renewDeadlineSeconds, retryPeriodSeconds: config.retryPeriodSeconds,
        onStartedLeading: lead,
        // Another process may be leading already: stop acting at once, as client-go does.
        onStoppedLeading: () => {
          metrics.isLeader.set(0);
          process.exit(EXIT_FAILURE);
        },
      })
    : undefined;
  if (elector === undefined) lead();
  else elector.start();

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(EXIT_FAILURE);
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.warn('shutdown took too long; exiting');
      process.exit(EXIT_FAILURE);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    (async () => {
      await controller.stop();
      await elector?.stop();
      metrics.isLeader.set(0);
      client.close();
      server.close();
    })().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`dynamokv-operator: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(EXIT_FAILURE);
});
