// `seed suspend`, `seed resume`, `seed rebuild` and `seed remove` against a real
// kube-apiserver with the SeedFlake CRD: the spec changes, an Event on the SeedFlake names
// who asked, and bad targets are named. (The webhook's side of a rebuild is tested in
// apps/webhook/test/rebuild.test.ts.)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  loadAllYaml,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { DELETED_BY_ANNOTATION, REBUILD_ANNOTATION } from '@seed/contracts';
import { SeedFlakeClient } from '@seed/seed-flakes';
import {
  installSeedFlakeCrd,
  serviceAccountKubeconfig,
  startKubeApiServer,
  type KubeApiServer,
} from '@seed/testing';
import { seed } from './seed-cli';

let api: KubeApiServer;
let flakes: SeedFlakeClient;
let core: CoreV1Api;
let home: string;

const run = (argv: string[]) => seed(argv, { env: { HOME: home, KUBECONFIG: api.kubeconfigPath } });

beforeAll(async () => {
  api = await startKubeApiServer();
  await installSeedFlakeCrd(api);
  const config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  flakes = new SeedFlakeClient(config, 'seed-test');
  core = config.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'default' } } }).catch(() => undefined);
  home = mkdtempSync(path.join(tmpdir(), 'seed-cli-suspend-'));
  await flakes.apply('web', { flake: 'github:acme/web', repository: 'acme/web', secretKey: 'web' });
}, 20 * 60_000);

afterAll(async () => {
  await api?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

async function events(): Promise<string[]> {
  const list = await core.listNamespacedEvent({ namespace: 'default' });
  return list.items
    .filter(
      (event) => event.involvedObject.kind === 'SeedFlake' && event.involvedObject.name === 'web',
    )
    .map((event) => `${event.reason}: ${event.message}`);
}

describe('seed suspend / seed resume', () => {
  it('suspends by name, recording who asked and why', async () => {
    expect(await run(['suspend', 'web', '--reason', 'rolled back by hand'])).toEqual({
      code: 0,
      out: 'web (github:acme/web) suspended by seed-admin\n',
      err: '',
    });
    expect((await flakes.get('web'))!.spec.suspend).toBe(true);
    expect(await events()).toEqual(['Suspended: suspended by seed-admin: rolled back by hand']);
  });

  it('says so when there is nothing to change, and writes nothing', async () => {
    expect((await run(['suspend', 'web'])).out).toBe(
      'web (github:acme/web) was already suspended: nothing changed\n',
    );
    expect(await events()).toHaveLength(1);
  });

  it('resumes by flake URI', async () => {
    expect((await run(['resume', 'github:acme/web'])).out).toBe(
      'web (github:acme/web) resumed by seed-admin\n',
    );
    expect((await flakes.get('web'))!.spec.suspend).toBe(false);
    expect(await events()).toContain('Resumed: resumed by seed-admin');
  });

  it('names a SeedFlake it cannot find, and exits 1', async () => {
    expect(await run(['suspend', 'nope'])).toEqual({
      code: 1,
      out: '',
      err: 'seed: no SeedFlake named nope (kubectl get seedflakes)\n',
    });
    expect((await run(['resume', 'github:acme/nope'])).err).toBe(
      'seed: no SeedFlake serves github:acme/nope (kubectl get seedflakes)\n',
    );
  });
});

describe('seed rebuild', () => {
  it('refuses a commit that is not a full commit id before asking anything', async () => {
    expect(await run(['rebuild', 'web', '--commit', 'abc123'])).toMatchObject({
      code: 1,
      err: expect.stringContaining(
        "option '--commit <sha>' argument 'abc123' is invalid. expected a full 40-digit git commit id",
      ),
    });
    expect((await flakes.get('web'))!.metadata.annotations?.[REBUILD_ANNOTATION]).toBeUndefined();
  });

  it('leaves the request on the SeedFlake and exits 1 when no webhook answers', async () => {
    const commit = 'c'.repeat(40);
    const result = await run(['rebuild', 'web', '--commit', commit, '--wait', '1']);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(
      /^seed: no webhook answered the rebuild request [a-z0-9-]+ within 1 s; it stays on SeedFlake web and is taken when a webhook runs/,
    );
    const request = JSON.parse(
      (await flakes.get('web'))!.metadata.annotations![REBUILD_ANNOTATION]!,
    ) as Record<string, string>;
    expect(request).toMatchObject({ commit, by: 'seed-admin' });
    expect(await events()).toContain(
      `RebuildRequested: rebuild of ${commit} requested by seed-admin`,
    );
  });
});

describe('seed remove', () => {
  it('names who deleted the SeedFlake on it and in an Event, then deletes it', async () => {
    // A finalizer as the reconciler's holds the object, so what was written can be read.
    await flakes.patch('web', { metadata: { finalizers: ['seed.loom.farm/flake-removal'] } });
    expect(await run(['remove', 'web'])).toEqual({
      code: 0,
      out: 'web (github:acme/web) deleted by seed-admin: its instances are removed after the grace period, its volume claims kept (seed status lists them)\n',
      err: '',
    });
    const deleted = await flakes.get('web');
    expect(deleted?.metadata.deletionTimestamp).toBeDefined();
    expect(deleted?.metadata.annotations?.[DELETED_BY_ANNOTATION]).toBe('seed-admin');
    expect(await events()).toContain('RemovalRequested: deleted by seed-admin');
    await flakes.patch('web', { metadata: { finalizers: null } });
    expect(await run(['remove', 'web'])).toMatchObject({
      code: 1,
      err: 'seed: no SeedFlake named web (kubectl get seedflakes)\n',
    });
  });
});

describe('the seed-operator role of deploy/manifests/rbac.yaml', () => {
  let operator: string;
  const runAs = (argv: string[]) => seed(argv, { env: { HOME: home, KUBECONFIG: operator } });

  beforeAll(async () => {
    const admin = new KubeConfig();
    admin.loadFromFile(api.kubeconfigPath);
    const objects = KubernetesObjectApi.makeApiClient(admin);
    const rbac = path.resolve(__dirname, '../../../deploy/manifests/rbac.yaml');
    for (const object of loadAllYaml(readFileSync(rbac, 'utf8')) as KubernetesObject[])
      if (object.metadata?.name === 'seed-operator') await objects.create(object);
    await core.createNamespacedServiceAccount({
      namespace: 'default',
      body: { metadata: { name: 'ops' } },
    });
    await objects.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'ops-seed-operator' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'seed-operator',
      },
      subjects: [{ kind: 'ServiceAccount', name: 'ops', namespace: 'default' }],
    } as KubernetesObject);
    operator = await serviceAccountKubeconfig(api, 'default', 'ops');
    await flakes.apply('ops', {
      flake: 'github:acme/ops',
      repository: 'acme/ops',
      secretKey: 'ops',
    });
  });

  it('is enough for suspend, resume, rebuild and remove', async () => {
    const who = 'system:serviceaccount:default:ops';
    expect((await runAs(['suspend', 'ops'])).out).toBe(
      `ops (github:acme/ops) suspended by ${who}\n`,
    );
    expect((await runAs(['resume', 'ops'])).out).toBe(`ops (github:acme/ops) resumed by ${who}\n`);
    // No webhook runs here: the request is written and waits.
    expect((await runAs(['rebuild', 'ops', '--wait', '1'])).err).toMatch(
      /no webhook answered the rebuild request/,
    );
    expect((await runAs(['remove', 'ops'])).out).toMatch(/^ops \(github:acme\/ops\) deleted by /);
    expect(await flakes.get('ops')).toBeUndefined();
  });

  it('reads no Secrets and touches no pods', async () => {
    const config = new KubeConfig();
    config.loadFromFile(operator);
    const asOperator = config.makeApiClient(CoreV1Api);
    await expect(asOperator.listNamespacedSecret({ namespace: 'default' })).rejects.toMatchObject({
      code: 403,
    });
    await expect(asOperator.listNamespacedPod({ namespace: 'default' })).rejects.toMatchObject({
      code: 403,
    });
  });
});
