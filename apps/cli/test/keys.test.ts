// `seed keys` against a real kube-apiserver: the TPM request as the reconciler writes it,
// and the node agent's report (packages/vtpm/test/node-tpm-agent.test.ts runs the agent
// itself and checks the recipient it records is the instance's).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { deriveNamespace } from '@seed/contracts';
import { startKubeApiServer, type KubeApiServer } from '@seed/testing';
import { seed } from './seed-cli';

const FLAKE = 'github:acme/keys';
const NS = deriveNamespace(FLAKE);
const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';

let api: KubeApiServer;
let core: CoreV1Api;
let home: string;

function run(argv: string[]) {
  return seed(argv, { env: { HOME: home, KUBECONFIG: api.kubeconfigPath } });
}

async function tpmRequest(instance: string, report: Record<string, string>): Promise<void> {
  await core.createNamespacedConfigMap({
    namespace: NS,
    body: {
      metadata: {
        name: `seed-tpm-${instance}`,
        labels: {
          'seed.loom.farm/managed-by': 'seed',
          'seed.loom.farm/instance': instance,
          'seed.loom.farm/tpm': 'request',
        },
      },
      data: { instance, ...report },
    },
  });
}

beforeAll(async () => {
  api = await startKubeApiServer();
  const config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  core = config.makeApiClient(CoreV1Api);
  home = mkdtempSync(path.join(tmpdir(), 'seed-cli-keys-'));
  await core.createNamespace({
    body: {
      metadata: {
        name: NS,
        labels: { 'seed.loom.farm/managed-by': 'seed' },
        annotations: { 'seed.loom.farm/flake-uri': FLAKE },
      },
    },
  });
  const placed = { node: 'node-a', ctrlSocket: '/var/lib/seed/tpm/x/tpm.sock.ctrl' };
  await tpmRequest('vault', { ...placed, ready: 'true', recipient: RECIPIENT });
  await tpmRequest('fresh', { ...placed, ready: 'true' });
  await tpmRequest('waiting', {});
  await tpmRequest('broken', {
    node: 'node-b',
    ready: 'false',
    reason: 'TpmFailed',
    message: 'cannot run swtpm: ENOENT',
  });
  await tpmRequest('forged', { ...placed, ready: 'true', recipient: 'age1; rm -rf /' });
}, 20 * 60_000);

afterAll(async () => {
  await api?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('seed keys', () => {
  it("prints the instance's age recipient", async () => {
    expect(await run(['keys', FLAKE, 'vault'])).toEqual({
      code: 0,
      out: `${RECIPIENT}\n`,
      err: '',
    });
  });

  it.each([
    [
      'fresh',
      /^seed: node node-a holds the TPM of instance fresh but has not recorded its recipient yet/,
    ],
    [
      'waiting',
      /^seed: the TPM of instance waiting is not on a node yet, so it has no identity; seed status github:acme\/keys says why\n$/,
    ],
    ['broken', /^seed: the TPM of instance broken is not available: cannot run swtpm: ENOENT\n$/],
    [
      'web',
      /^seed: instance web of github:acme\/keys has no TPM: only an instance that sets seed.secrets gets one/,
    ],
    [
      'forged',
      /^seed: the recipient recorded for instance forged is not an age recipient: "age1; rm -rf \/"\n$/,
    ],
    ['Bad_Name', /^seed: no instance Bad_Name: /],
  ])('exits 1 and says why for %s', async (instance, message) => {
    const { code, out, err } = await run(['keys', FLAKE, instance]);
    expect(out).toBe('');
    expect(err).toMatch(message);
    expect(code).toBe(1);
  });

  it('says when the flake was never applied, or is no flake URI', async () => {
    const never = await run(['keys', 'github:acme/never', 'vault']);
    expect(never.code).toBe(1);
    expect(never.err).toMatch(/^seed: flake github:acme\/never has never been applied/);
    const invalid = await run(['keys', 'nixpkgs', 'vault']);
    expect(invalid.code).toBe(1);
    expect(invalid.err).toMatch(/^seed: .*nixpkgs/);
  });
});
