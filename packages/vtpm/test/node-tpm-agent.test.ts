// The node agent against a real kube-apiserver and real swtpm: claims, readiness,
// failures and requests that try to reach another instance's TPM.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import {
  SEED_SECRETS_PROGRAM,
  secretsToolsDir,
  startKubeApiServer,
  type KubeApiServer,
} from '@seed/testing';
import { execFileSync } from 'node:child_process';
import {
  KubeTpmRequests,
  NodeTpmAgent,
  VtpmStore,
  controlCapabilities,
  runningSwtpm,
  seedSecretsIdentity,
  startSwtpm,
  stopSwtpm,
  type AgentLogger,
} from '../src';

const TENANT = 's-gaydazldmnsg';
const VICTIM = 's-victimvictim';
const GRACE_MS = 60_000;
const quiet: AgentLogger = { info: () => undefined, warn: () => undefined };

let api: KubeApiServer;
let core: CoreV1Api;
let work: string;
let clock = 1_000_000;
const stores: VtpmStore[] = [];

function store(
  root: string,
  swtpm = 'swtpm',
  createIdentity?: (dataSocket: string) => Promise<string>,
): VtpmStore {
  const made = new VtpmStore({ root, swtpm, graceMs: GRACE_MS, now: () => clock, createIdentity });
  stores.push(made);
  return made;
}

function agent(node: string, vtpms: VtpmStore, claim = true): NodeTpmAgent {
  return new NodeTpmAgent(
    KubeTpmRequests.fromKubeconfig(api.kubeconfigPath),
    vtpms,
    { nodeName: node, claim },
    quiet,
  );
}

/** A TPM request as the reconciler writes it, with `overrides` for attacks. */
async function request(
  namespace: string,
  instance: string,
  overrides: { name?: string; data?: Record<string, string> } = {},
): Promise<void> {
  await core.createNamespacedConfigMap({
    namespace,
    body: {
      metadata: {
        name: overrides.name ?? `seed-tpm-${instance}`,
        labels: {
          'seed.loom.farm/managed-by': 'seed',
          'seed.loom.farm/instance': instance,
          'seed.loom.farm/tpm': 'request',
        },
      },
      data: overrides.data ?? { instance },
    },
  });
}

async function data(namespace: string, name: string): Promise<Record<string, string>> {
  return (await core.readNamespacedConfigMap({ namespace, name })).data ?? {};
}

beforeAll(async () => {
  api = await startKubeApiServer();
  const config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  core = config.makeApiClient(CoreV1Api);
  for (const name of [TENANT, VICTIM, 'not-a-flake'])
    await core.createNamespace({ body: { metadata: { name } } });
  work = await mkdtemp(path.join(tmpdir(), 'seed-node-agent-'));
}, 20 * 60_000);

afterAll(async () => {
  for (const vtpms of stores) {
    for (const instance of await vtpms.list()) {
      const pid = await runningSwtpm(vtpms.paths(instance));
      if (pid !== undefined) await stopSwtpm(pid);
    }
  }
  await api?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the node agent', () => {
  it('claims a request, starts its swtpm and reports the control socket; another node leaves it', async () => {
    await request(TENANT, 'web');
    const a = store(path.join(work, 'a'));
    const b = store(path.join(work, 'b'));
    const first = await agent('node-a', a).sync();
    expect(first.claimed).toEqual([{ namespace: TENANT, name: 'web' }]);
    const reported = await data(TENANT, 'seed-tpm-web');
    const ctrl = path.join(work, 'a', `${TENANT}_web`, 'tpm.sock.ctrl');
    expect(reported).toEqual({
      instance: 'web',
      node: 'node-a',
      ready: 'true',
      ctrlSocket: ctrl,
      reason: '',
      message: '',
    });
    await expect(controlCapabilities(ctrl)).resolves.toBeGreaterThan(0);

    const second = await agent('node-b', b).sync();
    expect(second.claimed).toEqual([]);
    expect(await b.list()).toEqual([]);
    expect((await data(TENANT, 'seed-tpm-web')).node).toBe('node-a');

    // A pass with nothing new writes nothing.
    const version = (
      await core.readNamespacedConfigMap({ namespace: TENANT, name: 'seed-tpm-web' })
    ).metadata!.resourceVersion;
    await agent('node-a', a).sync();
    expect(
      (await core.readNamespacedConfigMap({ namespace: TENANT, name: 'seed-tpm-web' })).metadata!
        .resourceVersion,
    ).toBe(version);
  });

  it('restarts a TPM its VM shut down, and removes it a grace period after its request went away', async () => {
    const a = stores[0]!;
    const web = { namespace: TENANT, name: 'web' };
    await stopSwtpm((await runningSwtpm(a.paths(web)))!);
    const after = await agent('node-a', a).sync();
    expect(after.ready).toContainEqual(web);
    expect(await runningSwtpm(a.paths(web))).toBeDefined();

    await core.deleteNamespacedConfigMap({ namespace: TENANT, name: 'seed-tpm-web' });
    expect((await agent('node-a', a).sync()).removed).toEqual([]);
    clock += GRACE_MS;
    expect((await agent('node-a', a).sync()).removed).toEqual([web]);
    expect(existsSync(a.paths(web).dir)).toBe(false);
  });

  it('a node whose swtpm cannot start says why on the request', async () => {
    await request(TENANT, 'broken');
    const broken = store(path.join(work, 'broken'), path.join(work, 'no-such-swtpm'));
    const result = await agent('node-c', broken).sync();
    expect(result.failed).toHaveLength(1);
    const reported = await data(TENANT, 'seed-tpm-broken');
    expect(reported).toMatchObject({ node: 'node-c', ready: 'false', reason: 'TpmFailed' });
    expect(reported.message).toMatch(/no-such-swtpm/);
    expect(reported.ctrlSocket).toBeUndefined();
  });

  it('attack: a request cannot name another namespace or instance', async () => {
    const root = path.join(work, 'attacks');
    const vtpms = store(root);
    // data says the victim's namespace and instance; the label and name say its own.
    await request(TENANT, 'thief', { data: { instance: 'thief', namespace: VICTIM } });
    // the label says one instance, the data another
    await request(TENANT, 'mixed', { data: { instance: 'db' } });
    // named for another instance than its label
    await request(TENANT, 'alias', { name: 'seed-tpm-db' });
    // a label value Kubernetes allows that is no DNS label
    await request(TENANT, 'a_b', { name: 'seed-tpm-a-b' });
    // outside the flake namespaces
    await request('not-a-flake', 'web');
    const result = await agent('node-d', vtpms).sync();
    expect(result.ready).toEqual([{ namespace: TENANT, name: 'thief' }]);
    expect(await vtpms.list()).toEqual([{ namespace: TENANT, name: 'thief' }]);
    expect(result.invalid.map(({ namespace, name }) => `${namespace}/${name}`).sort()).toEqual([
      'not-a-flake/seed-tpm-web',
      `${TENANT}/seed-tpm-a-b`,
      `${TENANT}/seed-tpm-db`,
      `${TENANT}/seed-tpm-mixed`,
    ]);
    expect(await data(TENANT, 'seed-tpm-mixed')).toMatchObject({
      ready: 'false',
      reason: 'InvalidRequest',
      message: 'data.instance "db" differs from the instance label mixed',
    });
    expect((await data('not-a-flake', 'seed-tpm-web')).message).toBe(
      'namespace "not-a-flake" is not a flake namespace',
    );
    expect(existsSync(path.join(root, `${VICTIM}_thief`))).toBe(false);
  });

  it('an agent that takes no new requests claims none', async () => {
    await request(VICTIM, 'late');
    const result = await agent('node-e', store(path.join(work, 'e')), false).sync();
    expect(result.claimed).toEqual([]);
    expect((await data(VICTIM, 'seed-tpm-late')).node).toBeUndefined();
  });

  it("records the instance's recipient: the identity created before any VM has the TPM", async () => {
    const tools = await secretsToolsDir();
    const PATH = `${tools}:${process.env.PATH ?? '/usr/bin:/bin'}`;
    const root = path.join(work, 'identity');
    const vtpms = store(root, 'swtpm', seedSecretsIdentity(SEED_SECRETS_PROGRAM, PATH));
    await request(TENANT, 'vault');
    const result = await agent('node-f', vtpms).sync();
    // (it also claims the request the previous test's agent left alone)
    expect(result.ready).toContainEqual({ namespace: TENANT, name: 'vault' });
    const reported = await data(TENANT, 'seed-tpm-vault');
    expect(reported.recipient).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    expect(reported.ready).toBe('true');
    // The TPM the VM gets has only its control socket, and answers on it.
    const vault = { namespace: TENANT, name: 'vault' };
    await expect(controlCapabilities(vtpms.paths(vault).ctrl)).resolves.toBeGreaterThan(0);

    // What the instance's first activation will print: the same recipient, from the same
    // sealed identity (the TPM opened again with a host channel, as a VM would open it).
    await stopSwtpm((await runningSwtpm(vtpms.paths(vault)))!);
    const host = await startSwtpm('swtpm', vtpms.paths(vault), true);
    try {
      const printed = execFileSync(SEED_SECRETS_PROGRAM, ['recipient'], {
        env: { PATH, TPM2TOOLS_TCTI: `swtpm:path=${vtpms.paths(vault).data}` },
        encoding: 'utf8',
      }).trim();
      expect(printed).toBe(reported.recipient);
    } finally {
      await stopSwtpm(host);
    }
    // Started again (its VM shut it down): the recorded recipient, no new identity.
    const again = await agent('node-f', vtpms).sync();
    expect(again.ready).toContainEqual(vault);
    expect((await data(TENANT, 'seed-tpm-vault')).recipient).toBe(reported.recipient);
  });
});
