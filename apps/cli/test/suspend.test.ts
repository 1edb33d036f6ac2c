// `seed suspend` and `seed resume` against a real kube-apiserver with the SeedFlake CRD:
// the spec changes, an Event on the SeedFlake names who asked, and bad targets are named.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { SeedFlakeClient } from '@seed/seed-flakes';
import { installSeedFlakeCrd, startKubeApiServer, type KubeApiServer } from '@seed/testing';
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
