import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readMounts } from '@seed/mount-table';
import {
  acquireNodeLock,
  addToStore,
  httpGetOnce,
  kubeRequest,
  NODE_NETWORK,
  startLocalCluster,
  buildNixImage,
  type LocalCluster,
} from '../src';

const GC_ROOTS_AUTO = '/nix/var/nix/gcroots/auto';
import { iptablesRules, NODE_SYSCTLS } from '../src/node/host-changes';

const run = promisify(execFile);

// The first run on a machine builds the node's parts (scripts/node-binaries, ~15 min cold);
// other test files' nodes may hold the machine's node lock for a few minutes.
const FIRST_START_TIMEOUT_MS = 30 * 60_000;
const TIMEOUT_MS = 180_000;
const LOCK_WAIT_TIMEOUT_MS = 30 * 60_000;

/**
 * What a node may change on the host, read the same way before and after. Other test
 * files run beside this one (their own API servers, the shoot pool's mounts), so only
 * what is a node's counts: its parts (an API server set up for a node), its links and
 * network namespaces, mounts under a node's folders.
 */
async function hostState(): Promise<Record<string, unknown>> {
  const sysctls: Record<string, string> = {};
  for (const name of NODE_SYSCTLS) {
    sysctls[name] = (await readFile(`/proc/sys/${name}`, 'utf8').catch(() => '')).trim();
  }
  const pgrep = async (args: string[]): Promise<string[]> =>
    (await run('pgrep', ['-a', ...args]).catch(() => ({ stdout: '' }))).stdout
      .split('\n')
      .filter((line) => line !== '');
  const parts = [
    ...(await pgrep([
      '-x',
      'kubelet|containerd|containerd-shim-runc-v2|nix-snapshotter|kube-controller-manager|kube-scheduler|kube-proxy|kube-router|coredns',
    ])),
    ...(await pgrep(['-f', 'authorization-mode=Node,RBAC'])),
  ];
  return {
    processes: parts.sort(),
    sysctls,
    links: (await readdir('/sys/class/net'))
      .filter((link) => link === NODE_NETWORK.bridge || link.startsWith('veth'))
      .sort(),
    iptables: iptablesRules((await run('iptables-save', [])).stdout),
    ipsets: (await run('ipset', ['list', '-name'])).stdout.split('\n').filter(Boolean).sort(),
    mounts: (await readMounts())
      .map((mount) => mount.point)
      .filter((point) => /seed-node-|^\/run\/netns|^\/var\/lib\/kubelet|kubepods/.test(point))
      .sort(),
    kubepods: existsSync('/sys/fs/cgroup/memory/kubepods'),
    // The node's roots only (they point into its seed-node- folder): other test files may
    // add roots of their own to this machine-wide folder meanwhile.
    gcRoots: (
      await Promise.all(
        (await readdir(GC_ROOTS_AUTO).catch(() => [])).map(async (entry) =>
          (await readlink(path.join(GC_ROOTS_AUTO, entry)).catch(() => '')).includes('seed-node-')
            ? [entry]
            : [],
        ),
      )
    )
      .flat()
      .sort(),
    netns: (await readdir('/run/netns').catch(() => [])).sort(),
    hostPaths: ['/var/lib/kubelet', '/var/lib/cni', '/var/log/pods', '/var/log/containers'].map(
      (hostPath) => `${hostPath} ${existsSync(hostPath)}`,
    ),
  };
}

/**
 * The host state while no node runs: other test files take turns on the node lock, so
 * the state is read holding it (a node started by another file the moment ours stopped
 * would otherwise show up as ours).
 */
async function quietHostState(): Promise<Record<string, unknown>> {
  const lock = await acquireNodeLock(30 * 60_000);
  try {
    return await hostState();
  } finally {
    await lock.release();
  }
}

/** A nix-snapshotter image of busybox serving `files` over HTTP on `port`. */
async function httpdImage(nix2container: string, files: Record<string, string>, port: number) {
  const work = await mkdtemp(path.join(tmpdir(), 'seed-node-test-'));
  try {
    await mkdir(path.join(work, 'www'));
    await mkdir(path.join(work, 'busybox', 'bin'), { recursive: true });
    await copyFile('/bin/busybox', path.join(work, 'busybox', 'bin', 'busybox'));
    for (const [name, content] of Object.entries(files)) {
      await writeFile(path.join(work, 'www', name), content);
    }
    // Folders, as nix packages are: containerd cannot mount a bare file's store path.
    const busybox = await addToStore(path.join(work, 'busybox'));
    const www = await addToStore(path.join(work, 'www'));
    return `nix:0${await buildNixImage(nix2container, 'httpd-image.tar', {
      closure: [busybox, www],
      config: {
        Entrypoint: [`${busybox}/bin/busybox`, 'httpd', '-f', '-p', String(port), '-h', www],
      },
    })}`;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

describe('a local node', () => {
  let before: Record<string, unknown>;
  let cluster: LocalCluster;
  let binDir: string;
  const namespace = 'node-test';

  beforeAll(async () => {
    before = await quietHostState();
    cluster = await startLocalCluster();
    binDir = (await run(path.resolve(__dirname, '../../../scripts/node-binaries'), [])).stdout
      .trim()
      .split('\n')
      .pop()!;
  }, FIRST_START_TIMEOUT_MS);

  afterAll(async () => {
    await cluster?.stop();
  }, TIMEOUT_MS);

  const api = () => cluster.api;
  const create = async (collection: string, object: unknown): Promise<void> => {
    const { status, body } = await kubeRequest(api(), 'POST', collection, object);
    if (status >= 300) throw new Error(`POST ${collection}: ${status} ${JSON.stringify(body)}`);
  };
  const waitFor = async <T>(what: string, read: () => Promise<T | undefined>): Promise<T> => {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const value = await read().catch(() => undefined);
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };

  it(
    'runs a nix:0 image from the nix store, behind a Service, a DNS name and a bound claim',
    async () => {
      const image = await httpdImage(
        path.join(binDir, 'nix2container'),
        { 'index.html': 'served from the nix store\n' },
        8080,
      );
      await create('/api/v1/namespaces', { metadata: { name: namespace } });
      await create(`/api/v1/namespaces/${namespace}/persistentvolumeclaims`, {
        metadata: { name: 'data' },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Mi' } } },
      });
      const labels = { app: 'web' };
      await create(`/apis/apps/v1/namespaces/${namespace}/deployments`, {
        metadata: { name: 'web' },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              runtimeClassName: 'kata',
              terminationGracePeriodSeconds: 1,
              automountServiceAccountToken: false,
              containers: [
                {
                  name: 'web',
                  image,
                  volumeMounts: [{ name: 'data', mountPath: '/data' }],
                  readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
                },
              ],
              volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
            },
          },
        },
      });
      await create(`/api/v1/namespaces/${namespace}/services`, {
        metadata: { name: 'web' },
        spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      });

      const deployment = `/apis/apps/v1/namespaces/${namespace}/deployments/web`;
      await waitFor('the Deployment to become available', async () => {
        const { body } = await kubeRequest(api(), 'GET', deployment);
        const status = (body as { status?: { availableReplicas?: number } }).status;
        return (status?.availableReplicas ?? 0) >= 1 ? true : undefined;
      });
      const claim = await kubeRequest(
        api(),
        'GET',
        `/api/v1/namespaces/${namespace}/persistentvolumeclaims/data`,
      );
      expect((claim.body as { status: { phase: string } }).status.phase).toBe('Bound');

      const pods = await kubeRequest(
        api(),
        'GET',
        `/api/v1/namespaces/${namespace}/pods?labelSelector=app%3Dweb`,
      );
      const pod = (pods.body as { items: { status: { podIP: string } }[] }).items[0]!;
      expect(pod.status.podIP.startsWith(NODE_NETWORK.podCidr.slice(0, -5))).toBe(true);
      const fromPod = await httpGetOnce(`http://${pod.status.podIP}:8080/`, { timeoutMs: 2_000 });
      expect(fromPod.body).toBe('served from the nix store\n');

      const service = await kubeRequest(
        api(),
        'GET',
        `/api/v1/namespaces/${namespace}/services/web`,
      );
      const clusterIp = (service.body as { spec: { clusterIP: string } }).spec.clusterIP;
      // kube-proxy routes the Service a moment after the pod is Ready.
      const fromService = await waitFor('the Service IP to answer', async () => {
        const { status, body } = await httpGetOnce(`http://${clusterIp}/`, { timeoutMs: 2_000 });
        return status === 200 ? body : undefined;
      });
      expect(fromService).toBe('served from the nix store\n');

      const { stdout } = await run('busybox', [
        'nslookup',
        `web.${namespace}.svc.${NODE_NETWORK.clusterDomain}`,
        NODE_NETWORK.nodeIp,
      ]);
      expect(stdout).toContain(clusterIp);
    },
    TIMEOUT_MS,
  );

  it(
    'puts the host back as it found it on stop',
    async () => {
      await cluster.stop();
      expect(await quietHostState()).toEqual(before);
    },
    LOCK_WAIT_TIMEOUT_MS,
  );

  it(
    'cleans up after a run that was killed: the next start undoes it',
    async () => {
      const owner = spawn(
        process.execPath,
        ['-e', "require('../dist').startLocalCluster().then(() => console.log('up'))"],
        { cwd: __dirname, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve, reject) => {
        owner.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('up')) resolve();
        });
        owner.once('exit', (code) => reject(new Error(`the node's owner exited (${code})`)));
      });
      // Checked while the owner holds the node: once it is killed, whichever start comes
      // next on this machine (this test's or another test file's) finds its leftovers.
      expect(existsSync(`/sys/class/net/${NODE_NETWORK.bridge}`)).toBe(true);
      owner.kill('SIGKILL');
      await new Promise((resolve) => owner.once('exit', resolve));
      const next = await startLocalCluster();
      await next.stop();
      expect(await quietHostState()).toEqual(before);
    },
    LOCK_WAIT_TIMEOUT_MS,
  );
});
