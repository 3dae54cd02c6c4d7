/**
 * The operator's configuration: the Helm chart's environment variables with their defaults, a flag
 * for each that wins over the environment, and every bad value reported by name.
 */
import { loadOperatorConfig, OperatorConfigError } from './config';

test('defaults, with the identity from host and pid', () => {
  expect(loadOperatorConfig([], { OPERATOR_NAMESPACE: 'ops' }, 'host', 7)).toEqual({
    kubeconfig: '', watchNamespaces: [], operatorNamespace: 'ops', leaderElection: true, leaseName: 'dynamokv-operator',
    leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2, metricsPort: 8080, metricsHost: '0.0.0.0',
    defaultNodeImage: 'dynamokv/node:0.1.0', workers: 2, resyncIntervalSeconds: 300, logLevel: 'info', identity: 'host-7',
  });
});

test('environment variables as the chart sets them, and flags that win over them', () => {
  const env = { KUBECONFIG: '/k', WATCH_NAMESPACES: 'a, b,', LEADER_ELECTION: 'false', METRICS_PORT: '9090', DEFAULT_NODE_IMAGE: 'r/n:1', POD_NAME: 'op-0', OPERATOR_NAMESPACE: 'x' };
  const config = loadOperatorConfig(['--metrics-port', '9191', '--watch-namespaces=c'], env, 'host', 1);
  expect(config).toMatchObject({ kubeconfig: '/k', watchNamespaces: ['c'], leaderElection: false, metricsPort: 9191, defaultNodeImage: 'r/n:1', identity: 'op-0' });
  expect(loadOperatorConfig([], env, 'host', 1)).toMatchObject({ watchNamespaces: ['a', 'b'] });
});

test('every problem is reported, by name', () => {
  const bad = () => loadOperatorConfig([], { METRICS_PORT: '0', LEADER_ELECTION: 'maybe', WATCH_NAMESPACES: 'Bad_NS', LEASE_DURATION_SECONDS: '5', RENEW_DEADLINE_SECONDS: '5', OPERATOR_NAMESPACE: 'x' }, 'h', 1);
  expect(bad).toThrow(OperatorConfigError);
  expect(bad).toThrow(/LEADER_ELECTION=maybe[\s\S]*METRICS_PORT=0[\s\S]*RENEW_DEADLINE_SECONDS must be shorter[\s\S]*"Bad_NS"/);
  expect(() => loadOperatorConfig(['--no-such-flag'], {}, 'h', 1)).toThrow(OperatorConfigError);
});

test('--help', () => {
  expect(loadOperatorConfig(['--help'], {}, 'h', 1)).toBe('help');
});
