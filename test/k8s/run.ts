/**
 * For humans: starts the test control plane and the test kubelet, prints how to reach them, and
 * runs until ctrl-c (or SIGTERM), then stops everything it started.
 *
 *   npx tsc -p tsconfig.json && node dist/test/k8s/run.js [--verbose] [--dir DIR]
 *
 * Images: `dynamokv/node` runs the compiled node (dist/node/src/main.js) with the container's args,
 * `dynamokv/fixture` runs test/k8s/fixtures/readyServer.cjs. --verbose prints every line of every
 * component and container; --dir keeps the control plane's files (certificates, etcd) in DIR.
 */
import { join } from 'node:path';

import { NODE_MAIN, REPO_ROOT } from '../support/nodeProcess';
import { startControlPlane } from './controlPlane';
import { startKubelet } from './kubelet';

async function main(): Promise<void> {
  const verbose = process.argv.includes('--verbose');
  const dirIndex = process.argv.indexOf('--dir');
  const dir = dirIndex === -1 ? undefined : process.argv[dirIndex + 1];
  const log = verbose ? (line: string) => console.log(line) : undefined;
  const controlPlane = await startControlPlane({ dir, log });
  const kubelet = await startKubelet({
    kubeconfigPath: controlPlane.kubeconfigPath,
    images: {
      'dynamokv/node': (container) => ({ command: process.execPath, args: [NODE_MAIN, ...(container.args ?? [])] }),
      'dynamokv/fixture': (container) => ({ command: process.execPath, args: [join(REPO_ROOT, 'test', 'k8s', 'fixtures', 'readyServer.cjs'), ...(container.args ?? [])] }),
    },
    log: (line) => console.log(`[kubelet] ${line}`),
  });
  console.log(`\ncontrol plane at ${controlPlane.server}\n  export KUBECONFIG=${controlPlane.kubeconfigPath}\n  export PATH=${controlPlane.binDir}:$PATH\n  kubectl get nodes\nctrl-c stops everything.\n`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the kubelet and the control plane`);
    await kubelet.stop();
    await controlPlane.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
