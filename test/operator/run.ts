/**
 * For a human: a real control plane, the test kubelet and one operator, until ctrl-c.
 *
 *   npx tsc -p tsconfig.json && node dist/test/operator/run.js
 *
 * It prints a KUBECONFIG to export; then `kubectl apply -f examples/...` (or the manifest in
 * docs/operator.md), `kubectl get dkv -w`, `kubectl scale dkv/NAME --replicas=5`. Pods run as
 * local node processes on 127.0.x.y addresses; everything stops on ctrl-c.
 */
import { startHarness } from './harness';

async function main(): Promise<void> {
  const verbose = process.argv.includes('--verbose');
  const harness = await startHarness({ log: verbose ? (line) => process.stdout.write(`${line}\n`) : undefined });
  const operator = await harness.startOperator('operator-0', { LOG_LEVEL: 'info' });
  operator.child.stdout?.pipe(process.stdout);
  process.stdout.write(
    [
      '',
      'control plane, kubelet and operator are running.',
      `  export KUBECONFIG=${harness.controlPlane.kubeconfigPath}`,
      `  export PATH=${harness.controlPlane.binDir}:$PATH   # kubectl`,
      `  operator metrics: http://127.0.0.1:${operator.metricsPort}/metrics`,
      'ctrl-c stops everything.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    harness.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
