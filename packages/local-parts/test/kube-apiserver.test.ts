import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { promisify } from 'node:util';
import { startKubeApiServer, type KubeApiServer } from '../src';

const run = promisify(execFile);

// The first run on a machine builds kube-apiserver and etcd from source (~11 minutes
// cold, see scripts/kube-binaries); afterwards start-up takes a few seconds and
// startKubeApiServer enforces its own 60 s start deadline, so a hang still fails fast.
const FIRST_START_TIMEOUT_MS = 20 * 60_000;
const TIMEOUT_MS = 120_000;

interface Response {
  status: number;
  body: Record<string, unknown>;
}

interface RequestOptions {
  body?: string;
  contentType?: string;
  /** Send no Authorization header. */
  anonymous?: boolean;
}

/** One HTTPS request trusting only the test CA (global fetch cannot take a CA). */
function request(
  kube: KubeApiServer,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<Response> {
  const { body, contentType = 'application/json', anonymous = false } = options;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (!anonymous) headers.authorization = `Bearer ${kube.token}`;
    if (body !== undefined) headers['content-type'] = contentType;
    const req = https.request(
      new URL(path, kube.url),
      { method, ca: kube.caCert, agent: false, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** PIDs of live processes whose command line mentions `text` (our temp dir). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(text)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

const NAMESPACE = 'seed-kube-test';

describe('startKubeApiServer', () => {
  let kube: KubeApiServer;

  beforeAll(async () => {
    kube = await startKubeApiServer();
  }, FIRST_START_TIMEOUT_MS);

  afterAll(async () => {
    await kube?.stop();
  }, TIMEOUT_MS);

  it(
    'serves the API on loopback with the admin token',
    async () => {
      expect(kube.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const version = await request(kube, 'GET', '/version');
      expect(version.status).toBe(200);
      expect(version.body.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
      // No token: anonymous is not allowed to list namespaces under RBAC.
      const anonymous = await request(kube, 'GET', '/api/v1/namespaces', { anonymous: true });
      expect([401, 403]).toContain(anonymous.status);
    },
    TIMEOUT_MS,
  );

  it(
    'creates a namespace and a ConfigMap',
    async () => {
      const namespace = await request(kube, 'POST', '/api/v1/namespaces', {
        body: JSON.stringify({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: NAMESPACE },
        }),
      });
      expect(namespace.status).toBe(201);

      const configMap = await request(kube, 'POST', `/api/v1/namespaces/${NAMESPACE}/configmaps`, {
        body: JSON.stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'settings' },
          data: { colour: 'green' },
        }),
      });
      expect(configMap.status).toBe(201);
      expect(configMap.body.data).toEqual({ colour: 'green' });
    },
    TIMEOUT_MS,
  );

  it(
    'applies server-side',
    async () => {
      const manifest = [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        '  name: settings',
        `  namespace: ${NAMESPACE}`,
        'data:',
        '  colour: blue',
        '  size: large',
        '',
      ].join('\n');
      const applied = await request(
        kube,
        'PATCH',
        `/api/v1/namespaces/${NAMESPACE}/configmaps/settings?fieldManager=seed&force=true`,
        { body: manifest, contentType: 'application/apply-patch+yaml' },
      );
      expect(applied.status).toBe(200);
      expect(applied.body.data).toEqual({ colour: 'blue', size: 'large' });
      const metadata = applied.body.metadata as {
        managedFields: { manager: string; operation: string }[];
      };
      expect(metadata.managedFields).toContainEqual(
        expect.objectContaining({ manager: 'seed', operation: 'Apply' }),
      );
    },
    TIMEOUT_MS,
  );

  it(
    'writes a kubeconfig kubectl can use',
    async () => {
      const kubeconfig = readFileSync(kube.kubeconfigPath, 'utf8');
      expect(kubeconfig).toContain(`server: ${kube.url}`);
      expect(kubeconfig).toContain(`token: ${kube.token}`);
      // kubectl is packaged for Debian but need not be installed: check through it when it is.
      const kubectl = await run('kubectl', ['version', '--client'], { timeout: 10_000 }).then(
        () => true,
        () => false,
      );
      if (!kubectl) return;
      const { stdout } = await run('kubectl', [
        '--kubeconfig',
        kube.kubeconfigPath,
        'get',
        'namespace',
        NAMESPACE,
        '-o',
        'name',
      ]);
      expect(stdout.trim()).toBe(`namespace/${NAMESPACE}`);
    },
    TIMEOUT_MS,
  );

  it(
    'keeps its data across an API server restart',
    async () => {
      const before = processesMentioning(kube.dir);
      await kube.restart();
      const after = processesMentioning(kube.dir);
      // etcd kept running; the API server is a new process.
      expect(after).toHaveLength(2);
      expect(after.filter((pid) => before.includes(pid))).toHaveLength(1);

      const configMap = await request(
        kube,
        'GET',
        `/api/v1/namespaces/${NAMESPACE}/configmaps/settings`,
      );
      expect(configMap.status).toBe(200);
      expect(configMap.body.data).toEqual({ colour: 'blue', size: 'large' });
    },
    TIMEOUT_MS,
  );

  it(
    'stops etcd and the API server and removes its directory',
    async () => {
      const started = processesMentioning(kube.dir);
      expect(started).toHaveLength(2); // etcd and kube-apiserver, or the check below proves nothing
      const commands = started
        .map((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim())
        .sort();
      expect(commands).toEqual(['etcd', 'kube-apiserver']);

      await kube.stop();

      expect(processesMentioning(kube.dir)).toEqual([]);
      for (const pid of started) expect(existsSync(`/proc/${pid}`)).toBe(false);
      expect(existsSync(kube.dir)).toBe(false);
    },
    TIMEOUT_MS,
  );
});
