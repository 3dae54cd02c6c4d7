/**
 * The certificates and keys of the test control plane, made with the openssl command line (Node's
 * crypto cannot issue X.509 certificates). Every key is ECDSA P-256: quick to generate, and
 * accepted by kube-apiserver for serving, for client certificates and for signing service account
 * tokens.
 *
 * Files written into `dir`: ca.{crt,key}; apiserver.{crt,key} (serving, SANs for 127.0.0.1,
 * localhost, the `kubernetes` Service's first cluster IP and DNS names); admin.{crt,key} (client,
 * O=system:masters, the group RBAC binds to cluster-admin); controller-manager.{crt,key} (client,
 * CN=system:kube-controller-manager, the user RBAC's bootstrap policy gives that role); sa.{key,pub}
 * (the service account token signing key pair).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const VALID_DAYS = 30;

export interface ControlPlaneCertificates {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly adminCert: string;
  readonly adminKey: string;
  readonly controllerManagerCert: string;
  readonly controllerManagerKey: string;
  readonly serviceAccountKey: string;
  readonly serviceAccountPublicKey: string;
}

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', [...args], { cwd, stdio: 'pipe' });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString('utf8') ?? '';
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr || String(error)}`, { cause: error });
  }
}

function newKey(dir: string, name: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
}

/** A certificate for `name`.key signed by the CA, with the given subject and extensions. */
function signedCertificate(dir: string, name: string, subject: string, extensions: readonly string[]): void {
  newKey(dir, name);
  openssl(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', String(VALID_DAYS), '-extfile', `${name}.ext`], dir);
}

/**
 * Generates everything in `dir` (which must exist). `serviceIp` is the first address of the
 * service cluster IP range: pods reach the apiserver as https://kubernetes.default.svc, whose
 * address that is, so the serving certificate names it.
 */
export function generateCertificates(dir: string, serviceIp: string): ControlPlaneCertificates {
  newKey(dir, 'ca');
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-out', 'ca.crt', '-days', String(VALID_DAYS), '-subj', '/CN=dynamokv-test-ca'], dir);
  const serverNames = ['IP:127.0.0.1', `IP:${serviceIp}`, 'DNS:localhost', 'DNS:kubernetes', 'DNS:kubernetes.default', 'DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local'];
  signedCertificate(dir, 'apiserver', '/CN=kube-apiserver', [`subjectAltName=${serverNames.join(',')}`, 'extendedKeyUsage=serverAuth', 'keyUsage=critical,digitalSignature,keyEncipherment']);
  const client = ['extendedKeyUsage=clientAuth', 'keyUsage=critical,digitalSignature'];
  signedCertificate(dir, 'admin', '/O=system:masters/CN=kubernetes-admin', client);
  signedCertificate(dir, 'controller-manager', '/CN=system:kube-controller-manager', client);
  newKey(dir, 'sa');
  openssl(['ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  const path = (file: string) => join(dir, file);
  return {
    dir,
    caCert: path('ca.crt'),
    caKey: path('ca.key'),
    serverCert: path('apiserver.crt'),
    serverKey: path('apiserver.key'),
    adminCert: path('admin.crt'),
    adminKey: path('admin.key'),
    controllerManagerCert: path('controller-manager.crt'),
    controllerManagerKey: path('controller-manager.key'),
    serviceAccountKey: path('sa.key'),
    serviceAccountPublicKey: path('sa.pub'),
  };
}

/** A kubeconfig with everything embedded, so the file alone is enough to connect. */
export function kubeconfigYaml(options: { server: string; caCert: string; clientCert: string; clientKey: string; user: string }): string {
  const base64 = (file: string) => readFileSync(file).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: dynamokv-test',
    '  cluster:',
    `    server: ${options.server}`,
    `    certificate-authority-data: ${base64(options.caCert)}`,
    'users:',
    `- name: ${options.user}`,
    '  user:',
    `    client-certificate-data: ${base64(options.clientCert)}`,
    `    client-key-data: ${base64(options.clientKey)}`,
    'contexts:',
    `- name: ${options.user}@dynamokv-test`,
    '  context:',
    '    cluster: dynamokv-test',
    `    user: ${options.user}`,
    '    namespace: default',
    `current-context: ${options.user}@dynamokv-test`,
    '',
  ].join('\n');
}
