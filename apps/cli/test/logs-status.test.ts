// `seed status` and `seed logs` against a real kube-apiserver and the reconciler process.
// No kubelet runs here. For the logs themselves a stand-in answers the kubelet's
// `/containerLogs` endpoint, registered as a Node's kubelet endpoint, so the real API
// server proxies `pods/<pod>/log` to it as it would to a kubelet. On a real node, call
// streamInstanceLogs (src/logs/instance-logs.ts) against a running pod.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import {
  SIZE_TIERS,
  createReconcilerClient,
  deriveNamespace,
  generationHash,
  platformChannelCredentials,
  readTlsDirectory,
  type SeedMeta,
} from '@seed/contracts';
import {
  createPlatformCertificates,
  freeLoopbackPorts,
  startKubeApiServer,
  type PlatformCertificates,
  startServiceProcess,
  type KubeApiServer,
  type ServiceProcess,
} from '@seed/testing';
import { KubeLogsRepository } from '../src/logs/kube-logs.repository';
import { findLogsTarget } from '../src/logs/instance-logs';
import { seed } from './seed-cli';

const FLAKE = 'github:acme/logs';
const NS = deriveNamespace(FLAKE);
// The reconciler as the operator meets it: a program of the checkout (built before the
// tests run), not a dependency of the CLI.
const RECONCILER = path.resolve(__dirname, '../../reconciler/dist/main.js');

let api: KubeApiServer;
let reconciler: ServiceProcess;
let address: string;
let core: CoreV1Api;
let apps: AppsV1Api;
let home: string;
let certs: PlatformCertificates;
let kubelet: https.Server;
/** The URLs the stand-in kubelet was asked for. */
const kubeletAsked: string[] = [];

/**
 * Answers `/containerLogs/<ns>/<pod>/<container>` as a kubelet does: two lines; with
 * `follow`, a line every 20 ms until the client goes; `previous` as a pod that never
 * restarted.
 */
async function startKubelet(): Promise<number> {
  kubelet = https.createServer(
    { cert: readFileSync(`${api.dir}/serving.crt`), key: readFileSync(`${api.dir}/serving.key`) },
    (request, response) => {
      const url = new URL(request.url ?? '/', 'https://kubelet');
      kubeletAsked.push(`${url.pathname}${url.search}`);
      if (url.searchParams.get('previous') === 'true') {
        response.writeHead(400, { 'content-type': 'text/plain' });
        response.end('previous terminated container "db" in pod "db-5d8f-ddddd" not found');
        return;
      }
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.write('systemd[1]: Started web.service.\nweb[42]: listening on :8080\n');
      if (url.searchParams.get('follow') !== 'true') return void response.end();
      let n = 0;
      const timer = setInterval(() => response.write(`web[42]: request ${++n}\n`), 20);
      response.on('close', () => clearInterval(timer));
    },
  );
  await new Promise<void>((resolve) => kubelet.listen(0, '127.0.0.1', resolve));
  return (kubelet.address() as { port: number }).port;
}

function meta(name: string): SeedMeta {
  return {
    name,
    system: 'x86_64-linux',
    size: 's',
    resources: { ...SIZE_TIERS.s },
    expose: {},
    storage: {},
    connect: {},
    rollout: 'recreate',
    shoot: { enable: false },
  };
}

/** What the builder would send for a flake of these instances. */
async function applyGeneration(flakeUri: string, names: string[]): Promise<void> {
  const seeds = names.map((name) => ({
    name,
    meta: meta(name),
    image: `/nix/store/${'0'.repeat(32)}-seed-${name}-image`,
  }));
  const builder = readTlsDirectory(certs.builder);
  const client = createReconcilerClient(address, platformChannelCredentials(builder, 60_000));
  try {
    await new Promise((resolve, reject) =>
      client.applyGeneration(
        {
          flakeUri,
          namespace: deriveNamespace(flakeUri),
          revision: 'b'.repeat(40),
          generation: generationHash(seeds),
          instances: seeds.map((s) => ({
            name: s.name,
            metaJson: JSON.stringify(s.meta),
            image: s.image,
          })),
        },
        { deadline: Date.now() + 30_000 },
        (error, reply) => (error ? reject(error) : resolve(reply)),
      ),
    );
  } finally {
    client.close();
  }
}

async function createPod(name: string, instance: string, nodeName?: string): Promise<void> {
  await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: {
        name,
        labels: { 'seed.loom.farm/managed-by': 'seed', 'seed.loom.farm/instance': instance },
      },
      spec: { ...(nodeName ? { nodeName } : {}), containers: [{ name: instance, image: 'x' }] },
    },
  });
}

/** The CLI as an operator runs it, with this run's kubeconfig and reconciler. */
function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  return seed(argv, {
    env: {
      HOME: home,
      KUBECONFIG: api.kubeconfigPath,
      SEED_RECONCILER_ADDRESS: address,
      SEED_TLS_DIR: certs.operator,
      ...env,
    },
  });
}

beforeAll(async () => {
  api = await startKubeApiServer();
  const config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  core = config.makeApiClient(CoreV1Api);
  apps = config.makeApiClient(AppsV1Api);
  home = mkdtempSync(path.join(tmpdir(), 'seed-cli-home-'));
  certs = await createPlatformCertificates(mkdtempSync(path.join(home, 'tls-')));
  const [port] = await freeLoopbackPorts(1);
  address = `127.0.0.1:${port}`;
  reconciler = startServiceProcess(RECONCILER, {
    SEED_KUBECONFIG: api.kubeconfigPath,
    SEED_TLS_DIR: certs.reconciler,
    SEED_RECONCILER_GRPC_PORT: String(port),
    SEED_RECONCILER_HTTP_PORT: '0',
  });
  await reconciler.waitForLog((line) => line.msg === 'reconciler listening');
  await applyGeneration(FLAKE, ['db', 'web']);
}, 20 * 60_000);

afterAll(async () => {
  kubelet?.closeAllConnections();
  kubelet?.close();
  reconciler?.kill('SIGKILL');
  await reconciler?.exited;
  await api?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('seed status', () => {
  it('shows each instance with its rollout, ready count, reason and message', async () => {
    await createPod('web-5d8f-aaaaa', 'web', 'node-1');
    const pod = await core.readNamespacedPod({ namespace: NS, name: 'web-5d8f-aaaaa' });
    await core.replaceNamespacedPodStatus({
      namespace: NS,
      name: 'web-5d8f-aaaaa',
      body: {
        ...pod,
        status: {
          phase: 'Running',
          containerStatuses: [
            {
              name: 'web',
              image: 'x',
              imageID: '',
              ready: false,
              restartCount: 2,
              state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 20s' } },
              lastState: { terminated: { exitCode: 3, reason: 'Error' } },
            },
          ],
        },
      },
    });
    // As the Deployment controller would write it (none runs here) for web; db's stays unwritten.
    const web = await apps.readNamespacedDeployment({ namespace: NS, name: 'web' });
    await apps.replaceNamespacedDeploymentStatus({
      namespace: NS,
      name: 'web',
      body: {
        ...web,
        status: { observedGeneration: web.metadata!.generation, replicas: 1, updatedReplicas: 1 },
      },
    });
    const { code, out, err } = await run(['status', FLAKE]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/^INSTANCE\s+ROLLOUT\s+READY\s+REASON\s+MESSAGE$/m);
    expect(out).toMatch(
      /^db\s+progressing\s+0\s+DeploymentPending\s+waiting for the Deployment controller/m,
    );
    expect(out).toMatch(
      /^web\s+failed\s+0\s+CrashLoopBackOff\s+crash loop: container web restarted 2 times, last exit code 3 \(Error\) \(pod web-5d8f-aaaaa\)$/m,
    );
    const json = await run(['status', FLAKE, '--json']);
    expect(JSON.parse(json.out)).toMatchObject({
      instances: [
        { name: 'db', rollout: 'progressing', reason: 'DeploymentPending' },
        { name: 'web', rollout: 'failed', reason: 'CrashLoopBackOff', readyReplicas: 0 },
      ],
    });
    const list = await run(['status']);
    expect(list.out).toMatch(/^FLAKE\s+NAMESPACE\s+GENERATION\s+AVAILABLE\s+FAILED\s+LAST ERROR$/m);
    expect(list.out).toMatch(
      new RegExp(
        `^github:acme/logs\\s+${NS}\\s+[0-9a-f]{12}\\s+0/2\\s+web \\(CrashLoopBackOff\\)\\s+-$`,
        'm',
      ),
    );
  });
});

describe('seed status without the operator certificate', () => {
  it('says which variable to set, and a wrong folder is named at start', async () => {
    const bare = await seed(['status'], {
      env: { HOME: home, SEED_RECONCILER_ADDRESS: address },
    });
    expect(bare.code).toBe(1);
    expect(bare.err).toContain('set SEED_TLS_DIR to a folder with the operator');
    const wrong = await run(['status'], { SEED_TLS_DIR: home });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain(`cannot read ${path.join(home, 'tls.crt')}`);
  });

  it('a reader may read status', async () => {
    const { code } = await run(['status', FLAKE], { SEED_TLS_DIR: certs.reader });
    expect(code).toBe(0);
  });
});

describe('seed logs', () => {
  it('explains an unknown or invalid flake and exits 1', async () => {
    const unknown = await run(['logs', 'github:acme/never', 'web']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(
      /^seed: flake github:acme\/never has never been applied: there is no namespace s-[a-z0-9]{12} /,
    );
    const invalid = await run(['logs', 'nixpkgs', 'web']);
    expect(invalid.code).toBe(1);
    expect(invalid.err).toMatch(/^seed: .*nixpkgs/);
  });

  it('names the instances a flake has when asked for another', async () => {
    const { code, err } = await run(['logs', FLAKE, 'api']);
    expect(code).toBe(1);
    expect(err).toBe('seed: flake github:acme/logs has no instance api; it has: db, web\n');
  });

  it('says when an instance has no pod', async () => {
    const { code, err } = await run(['logs', FLAKE, 'db']);
    expect(code).toBe(1);
    expect(err).toBe(
      `seed: instance db has no pod yet (namespace ${NS}); seed status github:acme/logs says why\n`,
    );
  });

  it('says when the pod is not on a node yet', async () => {
    await createPod('db-5d8f-bbbbb', 'db');
    const { code, err, out } = await run(['logs', FLAKE, 'db', '--tail', '10']);
    expect(out).toBe('');
    expect(code).toBe(1);
    expect(err).toMatch(
      /^seed: pod db-5d8f-bbbbb of instance db is not scheduled on a node yet, so it has no log; seed status github:acme\/logs says why\n$/,
    );
  });

  it('passes on what the API server says when it cannot reach the node', async () => {
    // web's pod is on node-1, which does not exist here: the API server cannot ask a kubelet.
    const { code, err } = await run(['logs', FLAKE, 'web', '--previous']);
    expect(code).toBe(1);
    expect(err).toMatch(
      /^seed: cannot read the log of pod web-5d8f-aaaaa of instance web: .*"node-1" not found$/m,
    );
  });

  it('picks the running pod over a newer pending one, and tells when there are several', async () => {
    const kube = KubeLogsRepository.connect({ kind: 'files', files: [api.kubeconfigPath] });
    // creationTimestamp counts seconds: make this pod the newer one.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await createPod('web-5d8f-ccccc', 'web', 'node-1');
    const target = await findLogsTarget(kube, FLAKE, 'web');
    expect(target).toMatchObject({ namespace: NS, container: 'web' });
    expect([...target.pods].sort()).toEqual(['web-5d8f-aaaaa', 'web-5d8f-ccccc']);
    expect(target.pods).toEqual(['web-5d8f-ccccc', 'web-5d8f-aaaaa']);
    expect(target.pod).toBe('web-5d8f-aaaaa');
    const { err } = await run(['logs', FLAKE, 'web']);
    expect(err).toContain(
      'seed: pod web-5d8f-aaaaa (the instance has 2: web-5d8f-ccccc, web-5d8f-aaaaa)\n',
    );
  });

  describe('with a pod on a node', () => {
    beforeAll(async () => {
      const port = await startKubelet();
      await core.createNode({ body: { metadata: { name: 'kubelet-1' } } });
      const node = await core.readNode({ name: 'kubelet-1' });
      await core.replaceNodeStatus({
        name: 'kubelet-1',
        body: {
          ...node,
          status: {
            addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
            daemonEndpoints: { kubeletEndpoint: { Port: port } },
          },
        },
      });
      await createPod('db-5d8f-ddddd', 'db', 'kubelet-1');
      const pod = await core.readNamespacedPod({ namespace: NS, name: 'db-5d8f-ddddd' });
      await core.replaceNamespacedPodStatus({
        namespace: NS,
        name: 'db-5d8f-ddddd',
        body: {
          ...pod,
          status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
        },
      });
    });

    it("prints the running pod's log, the last N lines on request", async () => {
      const { code, out, err } = await run(['logs', FLAKE, 'db', '--tail', '5']);
      expect(err).toBe(
        'seed: pod db-5d8f-ddddd (the instance has 2: db-5d8f-ddddd, db-5d8f-bbbbb)\n',
      );
      expect(out).toBe('systemd[1]: Started web.service.\nweb[42]: listening on :8080\n');
      expect(code).toBe(0);
      expect(kubeletAsked.at(-1)).toBe(`/containerLogs/${NS}/db-5d8f-ddddd/db?tailLines=5`);
    });

    it('follows until interrupted', async () => {
      const interrupt = new AbortController();
      let seen = '';
      const following = seed(
        ['logs', FLAKE, 'db', '-f'],
        { env: { HOME: home, KUBECONFIG: api.kubeconfigPath }, signal: interrupt.signal },
        (text) => {
          seen += text;
          if (seen.includes('request 3\n')) interrupt.abort();
        },
      );
      const { code, out } = await following;
      expect(code).toBe(130);
      expect(out).toMatch(/^systemd.*\nweb\[42\]: listening on :8080\nweb\[42\]: request 1\n/);
      expect(kubeletAsked.at(-1)).toBe(`/containerLogs/${NS}/db-5d8f-ddddd/db?follow=true`);
    });

    it("passes on why there is no previous container's log", async () => {
      const { code, err } = await run(['logs', FLAKE, 'db', '--previous']);
      expect(code).toBe(1);
      expect(err).toMatch(
        /^seed: pod db-5d8f-ddddd of instance db has no previous container: it has not restarted \(previous terminated container "db" in pod "db-5d8f-ddddd" not found\)$/m,
      );
    });
  });

  it('checks the kubeconfig before asking anything', async () => {
    const missing = await run(['logs', FLAKE, 'web', '--kubeconfig', '/nonexistent/kubeconfig']);
    expect(missing).toMatchObject({
      code: 1,
      err: 'seed: --kubeconfig /nonexistent/kubeconfig: no such file\n',
    });
    const none = await run(['logs', FLAKE, 'web'], { KUBECONFIG: '' });
    expect(none.code).toBe(1);
    expect(none.err).toBe(
      'seed: no Kubernetes access: pass --kubeconfig FILE or set KUBECONFIG (seed up --keep prints one)\n',
    );
    const bad = await run(['logs', FLAKE, 'web', '--tail', 'some']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('expected a whole number of lines');
  });
});
