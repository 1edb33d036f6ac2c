// The node agent as the shoot pool's ServiceAccount, under deploy/manifests/rbac.yaml and
// admission.yaml against a real API server: what it needs is allowed, and its ConfigMap
// rights reach nothing but the agent's keys of TPM requests.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  loadAllYaml,
  setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { serviceAccountKubeconfig, startKubeApiServer, type KubeApiServer } from '@seed/testing';
import { KubeTpmRequests, NodeTpmAgent, VtpmStore, runningSwtpm, stopSwtpm } from '../src';

const MANIFESTS = path.resolve(__dirname, '../../../deploy/manifests');
const TENANT = 's-gaydazldmnsg';

let api: KubeApiServer;
let admin: CoreV1Api;
let asAgent: CoreV1Api;
let kubeconfig: string;
let work: string;
let store: VtpmStore;

const tpmLabels = {
  'seed.loom.farm/managed-by': 'seed',
  'seed.loom.farm/instance': 'web',
  'seed.loom.farm/tpm': 'request',
};

/** A merge patch of a ConfigMap as the agent's identity; the API server's refusal, or 'ok'. */
async function patchAsAgent(name: string, body: object): Promise<string> {
  try {
    await asAgent.patchNamespacedConfigMap(
      { namespace: TENANT, name, body },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    return 'ok';
  } catch (error) {
    return String((error as { body?: unknown }).body ?? error);
  }
}

beforeAll(async () => {
  api = await startKubeApiServer();
  const config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  admin = config.makeApiClient(CoreV1Api);
  const objects = KubernetesObjectApi.makeApiClient(config);
  await admin.createNamespace({ body: { metadata: { name: 'seed-system' } } });
  await admin.createNamespace({
    body: { metadata: { name: TENANT, labels: { 'seed.loom.farm/managed-by': 'seed' } } },
  });
  for (const file of ['rbac.yaml', 'admission.yaml'])
    for (const object of loadAllYaml(
      readFileSync(path.join(MANIFESTS, file), 'utf8'),
    ) as KubernetesObject[])
      await objects.create(object);
  kubeconfig = await serviceAccountKubeconfig(api, 'seed-system', 'seed-shoot-pool');
  const agentConfig = new KubeConfig();
  agentConfig.loadFromFile(kubeconfig);
  asAgent = agentConfig.makeApiClient(CoreV1Api);
  await admin.createNamespacedConfigMap({
    namespace: TENANT,
    body: { metadata: { name: 'seed-tpm-web', labels: tpmLabels }, data: { instance: 'web' } },
  });
  await admin.createNamespacedConfigMap({
    namespace: TENANT,
    body: {
      metadata: {
        name: 'seed-state',
        labels: { 'seed.loom.farm/managed-by': 'seed', 'seed.loom.farm/state': 'flake' },
      },
      data: { lastError: '' },
    },
  });
  // The API server picks up a new policy within a few seconds: wait until a no-op patch
  // of seed-state is denied, so the agent's own writes below are judged by it too.
  for (const deadline = Date.now() + 30_000; ;) {
    if ((await patchAsAgent('seed-state', { data: { lastError: '' } })) !== 'ok') break;
    if (Date.now() > deadline) throw new Error('the admission policy never took effect');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  work = await mkdtemp(path.join(tmpdir(), 'seed-node-agent-rbac-'));
  store = new VtpmStore({ root: work, swtpm: 'swtpm', graceMs: 60_000, now: Date.now });
}, 20 * 60_000);

afterAll(async () => {
  for (const instance of (await store?.list()) ?? []) {
    const pid = await runningSwtpm(store.paths(instance));
    if (pid !== undefined) await stopSwtpm(pid);
  }
  await api?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the node agent under the shoot pool ServiceAccount', () => {
  it('claims and reports a TPM request', async () => {
    const agent = new NodeTpmAgent(
      KubeTpmRequests.fromKubeconfig(kubeconfig),
      store,
      { nodeName: 'node-a', claim: true },
      { info: () => undefined, warn: () => undefined },
    );
    const result = await agent.sync();
    expect(result.ready).toEqual([{ namespace: TENANT, name: 'web' }]);
    const data = (await admin.readNamespacedConfigMap({ namespace: TENANT, name: 'seed-tpm-web' }))
      .data;
    expect(data).toMatchObject({ node: 'node-a', ready: 'true', instance: 'web' });
  });

  it("attack: may not write a flake's seed-state", async () => {
    expect(await patchAsAgent('seed-state', { data: { lastError: 'pwned' } })).toMatch(
      /the node agent changes only the data of TPM requests/,
    );
  });

  it('attack: may not move a TPM request to another instance or relabel it', async () => {
    expect(await patchAsAgent('seed-tpm-web', { data: { instance: 'db' } })).toMatch(
      /may not change which instance a TPM request is for/,
    );
    expect(
      await patchAsAgent('seed-tpm-web', {
        metadata: { labels: { 'seed.loom.farm/instance': 'db' } },
      }),
    ).toMatch(/the node agent changes only the data of TPM requests/);
  });

  it('attack: may not create, delete or read single ConfigMaps', async () => {
    await expect(
      asAgent.createNamespacedConfigMap({
        namespace: TENANT,
        body: {
          metadata: { name: 'seed-tpm-evil', labels: tpmLabels },
          data: { instance: 'evil' },
        },
      }),
    ).rejects.toMatchObject({ code: 403 });
    await expect(
      asAgent.deleteNamespacedConfigMap({ namespace: TENANT, name: 'seed-tpm-web' }),
    ).rejects.toMatchObject({ code: 403 });
    await expect(
      asAgent.readNamespacedConfigMap({ namespace: TENANT, name: 'seed-state' }),
    ).rejects.toMatchObject({ code: 403 });
  });
});
