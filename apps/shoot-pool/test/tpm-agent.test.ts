// The shoot pool daemon's TPM agent as main wires it (src/tpm/tpm-agent.ts), from its
// config, against a real kube-apiserver and real swtpm: it serves requests on its own
// loop, and stopping it leaves the TPM running (swtpm is detached).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '@seed/service-kit';
import { startKubeApiServer, type KubeApiServer } from '@seed/testing';
import { runningSwtpm, stopSwtpm, tpmPaths } from '@seed/vtpm';
import { loadShootPoolConfig } from '../src/config';
import { startTpmAgent } from '../src/tpm/tpm-agent';

const TENANT = 's-gaydazldmnsg';
let api: KubeApiServer;
let core: CoreV1Api;
let work: string;

beforeAll(async () => {
  api = await startKubeApiServer();
  const config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  core = config.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: TENANT } } });
  work = await mkdtemp(path.join(tmpdir(), 'shoot-tpm-agent-'));
  await writeFile(path.join(work, 'status-token'), 'status-token-'.padEnd(32, '0'));
}, 20 * 60_000);

afterAll(async () => {
  const pid = work
    ? await runningSwtpm(tpmPaths(path.join(work, 'tpm', `${TENANT}_web`)))
    : undefined;
  if (pid !== undefined) await stopSwtpm(pid);
  await api?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

it('serves TPM requests on its own loop, from SEED_TPM_ROOT and SEED_NODE_NAME', async () => {
  const config = loadShootPoolConfig({
    SEED_NODE_NAME: 'node-a',
    SEED_KUBECONFIG: api.kubeconfigPath,
    SEED_SHOOT_STATUS_TOKEN_FILE: path.join(work, 'status-token'),
    SEED_TPM_ROOT: path.join(work, 'tpm'),
    SEED_TPM_SYNC_SECONDS: '1',
  });
  await core.createNamespacedConfigMap({
    namespace: TENANT,
    body: {
      metadata: {
        name: 'seed-tpm-web',
        labels: {
          'seed.loom.farm/managed-by': 'seed',
          'seed.loom.farm/instance': 'web',
          'seed.loom.farm/tpm': 'request',
        },
      },
      data: { instance: 'web' },
    },
  });
  const agent = startTpmAgent(config.tpm!, createLogger('shoot-pool', 'silent'));
  try {
    for (const deadline = Date.now() + 20_000; ;) {
      const data = (await core.readNamespacedConfigMap({ namespace: TENANT, name: 'seed-tpm-web' }))
        .data;
      if (data?.ready === 'true') {
        expect(data).toMatchObject({
          node: 'node-a',
          ctrlSocket: path.join(work, 'tpm', `${TENANT}_web`, 'tpm.sock.ctrl'),
        });
        break;
      }
      if (Date.now() > deadline) throw new Error('the agent never reported the TPM ready');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await agent.stop();
  }
  expect(await runningSwtpm(tpmPaths(path.join(work, 'tpm', `${TENANT}_web`)))).toBeDefined();
});
