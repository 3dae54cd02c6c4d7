/**
 * The operator's configuration: environment variables (what the Helm chart sets) with an
 * equivalent flag for each (`--watch-namespaces a,b` = WATCH_NAMESPACES=a,b); a flag wins.
 * Problems are collected and reported together; main.ts exits with code 2 on any.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export interface OperatorConfig {
  /** Empty: in-cluster configuration. */
  readonly kubeconfig: string;
  /** Empty: every namespace. */
  readonly watchNamespaces: readonly string[];
  readonly operatorNamespace: string;
  readonly leaderElection: boolean;
  readonly leaseName: string;
  readonly leaseDurationSeconds: number;
  readonly renewDeadlineSeconds: number;
  readonly retryPeriodSeconds: number;
  readonly metricsPort: number;
  readonly metricsHost: string;
  readonly defaultNodeImage: string;
  readonly workers: number;
  readonly resyncIntervalSeconds: number;
  readonly logLevel: string;
  /** This process in the Lease and in events: POD_NAME when set, else host and pid. */
  readonly identity: string;
}

interface Setting {
  readonly env: string;
  readonly flag: string;
  readonly kind: 'string' | 'integer' | 'boolean' | 'list';
  readonly fallback: string;
  readonly help: string;
}

const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const SETTINGS: readonly Setting[] = [
  { env: 'KUBECONFIG', flag: 'kubeconfig', kind: 'string', fallback: '', help: 'kubeconfig file; in-cluster service account when unset' },
  { env: 'WATCH_NAMESPACES', flag: 'watch-namespaces', kind: 'list', fallback: '', help: 'comma-separated namespaces to watch; empty watches all' },
  { env: 'OPERATOR_NAMESPACE', flag: 'operator-namespace', kind: 'string', fallback: '', help: "namespace of the leader Lease (default: the service account's, else default)" },
  { env: 'LEADER_ELECTION', flag: 'leader-election', kind: 'boolean', fallback: 'true', help: 'hold a Lease before reconciling (run several replicas safely)' },
  { env: 'LEASE_NAME', flag: 'lease-name', kind: 'string', fallback: 'dynamokv-operator', help: 'name of the leader Lease' },
  { env: 'LEASE_DURATION_SECONDS', flag: 'lease-duration-seconds', kind: 'integer', fallback: '15', help: 'how long a standby respects a Lease it sees unchanged' },
  { env: 'RENEW_DEADLINE_SECONDS', flag: 'renew-deadline-seconds', kind: 'integer', fallback: '10', help: 'a leader that has not renewed for this long stops' },
  { env: 'RETRY_PERIOD_SECONDS', flag: 'retry-period-seconds', kind: 'integer', fallback: '2', help: 'how often to try to acquire or renew the Lease' },
  { env: 'METRICS_PORT', flag: 'metrics-port', kind: 'integer', fallback: '8080', help: 'port of /metrics and /healthz' },
  { env: 'METRICS_HOST', flag: 'metrics-host', kind: 'string', fallback: '0.0.0.0', help: 'address /metrics and /healthz listen on' },
  { env: 'DEFAULT_NODE_IMAGE', flag: 'default-node-image', kind: 'string', fallback: 'dynamokv/node:0.1.0', help: 'node image for clusters that name none' },
  { env: 'WORKERS', flag: 'workers', kind: 'integer', fallback: '2', help: 'clusters reconciled at once' },
  { env: 'RESYNC_INTERVAL_SECONDS', flag: 'resync-interval-seconds', kind: 'integer', fallback: '300', help: 'every cluster is reconciled at least this often' },
  { env: 'LOG_LEVEL', flag: 'log-level', kind: 'string', fallback: 'info', help: 'trace, debug, info, warn, error' },
];

export class OperatorConfigError extends Error {}

export function helpText(): string {
  return [
    'dynamokv-operator: runs DynamoCluster resources (dynamokv.io/v1alpha1).',
    '',
    'Every setting is an environment variable or the equivalent flag (the flag wins):',
    ...SETTINGS.map((s) => `  --${s.flag.padEnd(26)} ${s.env.padEnd(24)} ${s.help}${s.fallback === '' ? '' : ` (default ${s.fallback})`}`),
  ].join('\n');
}

export function loadOperatorConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, hostName: string, pid: number): OperatorConfig | 'help' {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const s of SETTINGS) options[s.flag] = { type: 'string' };
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new OperatorConfigError(`${(error as Error).message} (see --help)`);
  }
  if (flags.help === true) return 'help';
  const problems: string[] = [];
  const raw = (s: Setting): string => {
    const flag = flags[s.flag];
    if (typeof flag === 'string') return flag;
    const value = env[s.env];
    return value === undefined || value === '' ? s.fallback : value;
  };
  const get = (envName: string): Setting => SETTINGS.find((s) => s.env === envName) as Setting;
  const text = (name: string) => raw(get(name)).trim();
  const integer = (name: string, min: number, max: number) => {
    const value = text(name);
    const parsed = /^[0-9]+$/.test(value) ? Number(value) : NaN;
    if (!(parsed >= min && parsed <= max)) problems.push(`${name}=${value}: must be an integer from ${min} to ${max}`);
    return parsed;
  };
  const boolean = (name: string) => {
    const value = text(name).toLowerCase();
    if (!['true', 'false', '1', '0', 'yes', 'no'].includes(value)) problems.push(`${name}=${value}: must be true or false`);
    return ['true', '1', 'yes'].includes(value);
  };
  const config: OperatorConfig = {
    kubeconfig: text('KUBECONFIG'),
    watchNamespaces: text('WATCH_NAMESPACES').split(',').map((n) => n.trim()).filter((n) => n !== ''),
    operatorNamespace: text('OPERATOR_NAMESPACE') || serviceAccountNamespace() || 'default',
    leaderElection: boolean('LEADER_ELECTION'),
    leaseName: text('LEASE_NAME'),
    leaseDurationSeconds: integer('LEASE_DURATION_SECONDS', 2, 3600),
    renewDeadlineSeconds: integer('RENEW_DEADLINE_SECONDS', 1, 3600),
    retryPeriodSeconds: integer('RETRY_PERIOD_SECONDS', 1, 600),
    metricsPort: integer('METRICS_PORT', 1, 65535),
    metricsHost: text('METRICS_HOST'),
    defaultNodeImage: text('DEFAULT_NODE_IMAGE'),
    workers: integer('WORKERS', 1, 64),
    resyncIntervalSeconds: integer('RESYNC_INTERVAL_SECONDS', 10, 86_400),
    logLevel: text('LOG_LEVEL'),
    identity: env.POD_NAME !== undefined && env.POD_NAME !== '' ? env.POD_NAME : `${hostName}-${pid}`,
  };
  if (config.renewDeadlineSeconds >= config.leaseDurationSeconds) problems.push('RENEW_DEADLINE_SECONDS must be shorter than LEASE_DURATION_SECONDS');
  if (config.retryPeriodSeconds >= config.renewDeadlineSeconds) problems.push('RETRY_PERIOD_SECONDS must be shorter than RENEW_DEADLINE_SECONDS');
  for (const namespace of config.watchNamespaces) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) problems.push(`WATCH_NAMESPACES: "${namespace}" is not a namespace name`);
  }
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(config.logLevel)) problems.push(`LOG_LEVEL=${config.logLevel}: unknown level`);
  if (problems.length > 0) throw new OperatorConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return config;
}

function serviceAccountNamespace(): string {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8').trim();
  } catch {
    return '';
  }
}
