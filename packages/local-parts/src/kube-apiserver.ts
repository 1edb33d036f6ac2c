// A real Kubernetes API server for tests, started the way controller-runtime's envtest
// does it: etcd plus kube-apiserver on loopback, certificates and a service-account key
// generated per run, and an admin bearer token from a static token file. Alone, objects
// are stored and validated (RBAC, admission, server-side apply, watches) but nothing
// reconciles them; `startNode` (node.ts) adds a real node to one started `forNode`.
import { execFile } from 'node:child_process';
import { randomBytes, generateKeyPair } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CertificateAuthority, type IssuedCertificate } from './certificates';
import { ManagedProcess, waitFor } from './managed-process';
import { freeLoopbackPorts } from './ports';
import { kubeRequest } from './node/kube-requests';

const run = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);

/** Builds (or finds cached) kube-apiserver and etcd; same path from src/ and dist/. */
export const KUBE_BINARIES_SCRIPT = path.resolve(__dirname, '../../../scripts/kube-binaries');

const HOST = '127.0.0.1';

/** Service ClusterIPs; a node routes them with kube-proxy. */
export const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';

export interface KubeApiServerOptions {
  /** Directory holding `kube-apiserver` and `etcd`. Default: $SEED_KUBE_BIN_DIR, else scripts/kube-binaries. */
  binDir?: string;
  /** How long etcd plus the API server may take to become ready. Default 60 s. */
  startTimeoutMs?: number;
  /** How long a process gets between SIGTERM and SIGKILL. Default 5 s. */
  stopGraceMs?: number;
  /** Extra kube-apiserver flags (`--name=value`), appended after the defaults. */
  apiServerArgs?: string[];
  /**
   * Configure the API server for a node (`startNode`): Node and RBAC authorization,
   * NodeRestriction and ServiceAccount admission, a client certificate for kubelets.
   * Without it no pod needs a service account and no kubelet can register.
   */
  forNode?: boolean;
}

export interface KubeApiServer {
  /** `https://127.0.0.1:PORT` */
  url: string;
  /** Bearer token of an admin user in group system:masters. */
  token: string;
  /** PEM of the CA that signed the serving certificate. */
  caCert: string;
  /** The cluster's CA, which also signs the certificates of a node's components. */
  ca: CertificateAuthority;
  /** The key service-account tokens are signed with (for a controller manager). */
  serviceAccountPrivateKeyPath: string;
  /** kubeconfig with the cluster (CA data, url) and the admin token as current context. */
  kubeconfigPath: string;
  /** Temp dir holding certificates, etcd data and the logs `etcd.log`, `kube-apiserver.log`. */
  dir: string;
  /** Stops the API server and etcd (SIGTERM, then SIGKILL) and removes `dir`. Idempotent. */
  stop(): Promise<void>;
  /** Stops and starts the API server only: same port, certificates, token and etcd data. */
  restart(): Promise<void>;
}

/** Starts etcd and kube-apiserver on free loopback ports and waits until they serve. */
export async function startKubeApiServer(
  options: KubeApiServerOptions = {},
): Promise<KubeApiServer> {
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const stopGraceMs = options.stopGraceMs ?? 5_000;
  const binDir = options.binDir ?? process.env.SEED_KUBE_BIN_DIR ?? (await buildBinaries());

  const dir = await mkdtemp(path.join(tmpdir(), 'seed-kube-'));
  let etcd: ManagedProcess | undefined;
  let apiServer: ManagedProcess | undefined;

  // Everything below may fail half-way: never leave processes or the temp dir behind.
  let stopped = false;
  const stop = async (): Promise<void> => {
    stopped = true;
    // API server first, so it does not spend its shutdown retrying a dead etcd.
    await apiServer?.stop(stopGraceMs);
    await etcd?.stop(stopGraceMs);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + startTimeoutMs;
    const [etcdClientPort, etcdPeerPort, apiPort] = (await freeLoopbackPorts(3)) as [
      number,
      number,
      number,
    ];
    const url = `https://${HOST}:${apiPort}`;

    // etcd needs no credentials: let it boot while the keys are generated (an RSA key
    // alone can take a second).
    etcd = ManagedProcess.spawn(
      path.join(binDir, 'etcd'),
      etcdArgs(dir, etcdClientPort, etcdPeerPort),
      dir,
      'etcd',
    );
    const [files] = await Promise.all([
      writeCredentials(dir, options.forNode ?? false),
      waitFor('etcd', etcd, deadline, () => etcdHealthy(etcdClientPort)),
    ]);

    const apiArgs = [
      ...apiServerArgs(files, apiPort, etcdClientPort, options.forNode ?? false),
      ...(options.apiServerArgs ?? []),
    ];
    const startApiServer = async (until: number): Promise<ManagedProcess> => {
      const started = ManagedProcess.spawn(
        path.join(binDir, 'kube-apiserver'),
        apiArgs,
        dir,
        'kube-apiserver',
      );
      try {
        await waitFor('kube-apiserver', started, until, () =>
          apiServerReady(url, files.token, files.ca.certPem),
        );
        return started;
      } catch (error) {
        await started.stop(stopGraceMs);
        throw error;
      }
    };
    apiServer = await startApiServer(deadline);
    // /readyz can pass a moment before the bootstrap controller has written the
    // `default` namespace, and most tests create things in it.
    await waitFor(
      'kube-apiserver',
      apiServer,
      deadline,
      async () =>
        (await get(url, '/api/v1/namespaces/default', files.token, files.ca.certPem)) === 200,
    );

    const kubeconfigPath = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig(url, files.ca.certPem, files.token), {
      mode: 0o600,
    });

    return {
      url,
      token: files.token,
      caCert: files.ca.certPem,
      ca: files.ca,
      serviceAccountPrivateKeyPath: files.serviceAccountPrivateKeyPath,
      kubeconfigPath,
      dir,
      stop,
      restart: async () => {
        if (stopped) throw new Error('restart() after stop(): start a new API server instead');
        await apiServer?.stop(stopGraceMs);
        apiServer = await startApiServer(Date.now() + startTimeoutMs);
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

// ---------------------------------------------------------------------------------
// Binaries

/** Runs scripts/kube-binaries, which prints the binary directory on its last line. */
async function buildBinaries(): Promise<string> {
  // A cold build takes ~10 minutes; a cached one answers in milliseconds.
  const { stdout } = await run(KUBE_BINARIES_SCRIPT, [], { maxBuffer: 16 * 1024 * 1024 });
  const lines = stdout.trim().split('\n');
  const dir = lines[lines.length - 1];
  if (!dir) throw new Error(`${KUBE_BINARIES_SCRIPT} printed no directory`);
  return dir;
}

// ---------------------------------------------------------------------------------
// Credentials

interface Credentials {
  ca: CertificateAuthority;
  serving: IssuedCertificate;
  kubeletClient?: IssuedCertificate;
  serviceAccountPublicKeyPath: string;
  serviceAccountPrivateKeyPath: string;
  tokenFilePath: string;
  token: string;
}

/**
 * A throwaway CA and a serving certificate for 127.0.0.1, an RSA key pair to sign
 * service-account tokens with, and a static token file with one admin in system:masters.
 * With a node, also the API server's client certificate for kubelets.
 */
async function writeCredentials(dir: string, forNode: boolean): Promise<Credentials> {
  const file = (name: string): string => path.join(dir, name);
  const token = randomBytes(32).toString('hex');

  const certificates = async (): Promise<{
    ca: CertificateAuthority;
    serving: IssuedCertificate;
    kubeletClient?: IssuedCertificate;
  }> => {
    const ca = await CertificateAuthority.create(dir, 'seed-test-ca');
    const [serving, kubeletClient] = await Promise.all([
      ca.issue({
        name: 'serving',
        commonName: HOST,
        ipAddresses: [HOST],
        dnsNames: ['localhost'],
        usage: 'server',
      }),
      forNode
        ? ca.issue({
            name: 'kubelet-client',
            commonName: 'kube-apiserver-kubelet-client',
            organizations: ['system:masters'],
            usage: 'client',
          })
        : undefined,
    ]);
    return { ca, serving, kubeletClient };
  };

  const serviceAccountKeys = async (): Promise<void> => {
    // The API server wants RSA (or EC) for service-account tokens; RSA like a real cluster.
    const { publicKey, privateKey } = await generateKeyPairAsync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    await writeFile(file('sa.pub'), publicKey);
    await writeFile(file('sa.key'), privateKey, { mode: 0o600 });
  };

  // token,user,uid,"group,..."
  const tokenFile = writeFile(
    file('tokens.csv'),
    `${token},seed-admin,seed-admin,"system:masters"\n`,
    { mode: 0o600 },
  );

  const [{ ca, serving, kubeletClient }] = await Promise.all([
    certificates(),
    serviceAccountKeys(),
    tokenFile,
  ]);
  return {
    ca,
    serving,
    kubeletClient,
    serviceAccountPublicKeyPath: file('sa.pub'),
    serviceAccountPrivateKeyPath: file('sa.key'),
    tokenFilePath: file('tokens.csv'),
    token,
  };
}

// ---------------------------------------------------------------------------------
// Command lines

function etcdArgs(dir: string, clientPort: number, peerPort: number): string[] {
  const client = `http://${HOST}:${clientPort}`;
  const peer = `http://${HOST}:${peerPort}`;
  return [
    '--name=seed',
    `--data-dir=${path.join(dir, 'etcd-data')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=seed=${peer}`,
    // Test data need not survive a power cut; fsync dominates etcd's latency.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

function apiServerArgs(
  files: Credentials,
  port: number,
  etcdClientPort: number,
  forNode: boolean,
): string[] {
  const common = [
    `--bind-address=${HOST}`,
    // Without it the API server advertises the host's first non-loopback address.
    `--advertise-address=${HOST}`,
    `--secure-port=${port}`,
    `--etcd-servers=http://${HOST}:${etcdClientPort}`,
    // The serving certificate is given, but --cert-dir keeps it from writing next to the binary.
    `--cert-dir=${files.ca.dir}`,
    `--tls-cert-file=${files.serving.certPath}`,
    `--tls-private-key-file=${files.serving.keyPath}`,
    `--client-ca-file=${files.ca.certPath}`,
    `--token-auth-file=${files.tokenFilePath}`,
    `--service-account-issuer=https://${HOST}:${port}`,
    `--service-account-key-file=${files.serviceAccountPublicKeyPath}`,
    `--service-account-signing-key-file=${files.serviceAccountPrivateKeyPath}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--allow-privileged=true',
    // Loopback endpoints are invalid for the `kubernetes` Service, and nothing talks to
    // the API through it (instances get no API token); the lease reconciler would only
    // log errors.
    '--endpoint-reconciler-type=none',
  ];
  if (!forNode) {
    return [
      ...common,
      // RBAC so tests can check roles; the admin token bypasses it through system:masters.
      '--authorization-mode=RBAC',
      // No controller manager creates default service accounts, so pods would be refused.
      '--disable-admission-plugins=ServiceAccount',
    ];
  }
  return [
    ...common,
    // A node's kubelet is authorised by the Node authorizer and may touch only its own
    // Node and the pods bound to it (NodeRestriction), as in a real cluster.
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    `--kubelet-client-certificate=${files.kubeletClient!.certPath}`,
    `--kubelet-client-key=${files.kubeletClient!.keyPath}`,
    // The kubelet serves on the node's bridge address, which is its InternalIP.
    '--kubelet-preferred-address-types=InternalIP',
  ];
}

// ---------------------------------------------------------------------------------
// Readiness

async function etcdHealthy(port: number): Promise<boolean> {
  const response = await fetch(`http://${HOST}:${port}/health`, {
    signal: AbortSignal.timeout(1_000),
  });
  return response.ok && ((await response.json()) as { health?: string }).health === 'true';
}

async function apiServerReady(url: string, token: string, ca: string): Promise<boolean> {
  return (await get(url, '/readyz', token, ca)) === 200;
}

/** GET over HTTPS with our CA (global fetch cannot take one); resolves to the status. */
function get(url: string, requestPath: string, token: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      new URL(requestPath, url),
      // agent: false - no pooled socket survives into a restarted server.
      { ca, agent: false, headers: { authorization: `Bearer ${token}` }, timeout: 2_000 },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', reject);
  });
}

/**
 * A kubeconfig file that signs in as a ServiceAccount (a token the API server issues for
 * an hour), for tests that check what a service's RBAC lets it do.
 */
export async function serviceAccountKubeconfig(
  api: Pick<KubeApiServer, 'url' | 'token' | 'caCert' | 'dir'>,
  namespace: string,
  name: string,
): Promise<string> {
  const { status, body } = await kubeRequest(
    api,
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    { spec: { audiences: [], expirationSeconds: 3600 } },
  );
  const token = (body as { status?: { token?: string } }).status?.token;
  if (status !== 201 || token === undefined) {
    throw new Error(
      `no token for ServiceAccount ${namespace}/${name}: ${status} ${JSON.stringify(body)}`,
    );
  }
  const file = path.join(api.dir, `${name}.kubeconfig`);
  await writeFile(file, kubeconfig(api.url, api.caCert, token, name), { mode: 0o600 });
  return file;
}

function kubeconfig(url: string, caCert: string, token: string, user = 'seed-admin'): string {
  const caData = Buffer.from(caCert).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: seed-test
  cluster:
    server: ${url}
    certificate-authority-data: ${caData}
users:
- name: ${user}
  user:
    token: ${token}
contexts:
- name: seed-test
  context:
    cluster: seed-test
    user: ${user}
current-context: seed-test
`;
}
