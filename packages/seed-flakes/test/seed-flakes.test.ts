// The SeedFlake resource as the real API server holds it: deploy/'s CRD, its schema and
// validation rules, the status subresource, printer columns, and the watch the webhook
// and the reconciler follow.
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import type { SeedFlakeResource, SeedFlakeSpec } from '@seed/contracts';
import { installSeedFlakeCrd, startKubeApiServer, type KubeApiServer } from '@seed/local-parts';
import { SeedFlakeClient, watchSeedFlakes, type SeedFlakeWatch } from '../src';

let api: KubeApiServer;
let client: SeedFlakeClient;
let config: KubeConfig;

beforeAll(async () => {
  api = await startKubeApiServer();
  await installSeedFlakeCrd(api);
  config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  client = new SeedFlakeClient(config, 'seed-test');
}, 20 * 60_000);

afterAll(async () => {
  await api?.stop();
});

const spec = (overrides: Partial<SeedFlakeSpec> = {}): Partial<SeedFlakeSpec> => ({
  flake: 'github:acme/app',
  repository: 'acme/app',
  secretKey: 'app',
  ...overrides,
});

async function getJson(requestPath: string, headers: Record<string, string>): Promise<unknown> {
  const options: https.RequestOptions = { headers };
  await config.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    https
      .get(new URL(requestPath, api.url), options, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (response.statusCode !== 200) reject(new Error(`${response.statusCode}: ${text}`));
          else resolve(JSON.parse(text));
        });
      })
      .on('error', reject);
  });
}

/** The API server's refusal of an apply, as its message. */
async function refusal(name: string, body: Partial<SeedFlakeSpec>): Promise<string> {
  try {
    await client.apply(name, body);
  } catch (error) {
    if (error instanceof ApiException) return String(error.body);
    throw error;
  }
  throw new Error(`the API server took SeedFlake ${name}`);
}

describe('the SeedFlake CRD', () => {
  it('takes a valid SeedFlake and fills in its defaults', async () => {
    const created = await client.apply('app', spec({ branch: 'release/1' }));
    expect(created.spec).toEqual({
      ...spec({ branch: 'release/1' }),
      suspend: false,
      maxQueuedBuilds: 5,
    });
    await client.delete('app');
  });

  it.each([
    ['a password', 'git+https://user:secret@example.org/acme/app.git', 'carries a password'],
    ['a token as user', 'git+https://ghp_token@github.com/acme/app.git', 'carries credentials'],
    ['a token parameter', 'git+https://example.org/acme/app.git?access_token=x', 'token parameter'],
  ])('attack: a flake URI carrying %s is refused at admission', async (_what, flake, message) => {
    expect(await refusal('leaky', spec({ flake }))).toContain(message);
  });

  it('takes an ssh user, which names the account and is no secret', async () => {
    await client.apply('ssh', spec({ flake: 'git+ssh://git@example.org/acme/app.git' }));
    await client.delete('ssh');
  });

  it.each([
    ['a bad branch', { branch: 'bad..name' }, 'is not a valid git branch name'],
    ['too many queued builds', { maxQueuedBuilds: 1001 }, 'maxQueuedBuilds'],
    ['a quota of no pods', { quota: { pods: 0 } }, 'spec.quota.pods'],
    ['a quota that is no quantity', { quota: { memory: 'lots' } }, 'spec.quota.memory'],
    ['an unknown forge', { forge: 'sourcehut' }, 'spec.forge'],
    [
      'a relative token file',
      { forgeStatus: { api: 'https://api.github.com', tokenFile: 't' } },
      'tokenFile',
    ],
  ] as [string, Partial<SeedFlakeSpec>, string][])(
    'refuses %s',
    async (_what, overrides, message) => {
      expect(await refusal('bad', spec(overrides))).toContain(message);
    },
  );

  it('refuses a name that is no DNS label', async () => {
    expect(await refusal('a.b', spec())).toContain('must be a DNS label');
  });

  it('keeps the flake URI, which names the namespace', async () => {
    await client.apply('fixed', spec());
    expect(await refusal('fixed', spec({ flake: 'github:acme/other' }))).toContain('is immutable');
    await client.delete('fixed');
  });

  it('keeps the status apart from the spec (the status subresource)', async () => {
    await client.apply('status', spec());
    const patched = await client.patchStatus('status', {
      namespace: 'seed-abc',
      lastAppliedRevision: 'a'.repeat(40),
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Applied',
          message: 'generation g1 runs',
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      ],
    });
    expect(patched.status?.namespace).toBe('seed-abc');
    // An apply of the spec leaves the status as the status subresource wrote it.
    await client.apply('status', spec({ suspend: true }));
    const fetched = (await client.get('status'))!;
    expect(fetched.spec.suspend).toBe(true);
    expect(fetched.spec.flake).toBe('github:acme/app');
    expect(fetched.status?.conditions?.[0]?.reason).toBe('Applied');
    await client.delete('status');
  });

  it('answers `kubectl get seedflakes` with what runs where, from which commit', async () => {
    await client.apply('table', spec({ suspend: true }));
    await client.patchStatus('table', {
      namespace: 'seed-1234',
      lastAppliedRevision: 'c0ffee',
      generation: 'g-1',
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'Suspended',
          message: 'suspended',
          lastTransitionTime: '2026-12-03T00:00:00Z',
        },
      ],
    });
    // What kubectl asks for: the server-side table the printer columns make.
    const table = (await getJson('/apis/seed.loom.farm/v1alpha1/seedflakes/table', {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
    })) as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    const columns = table.columnDefinitions.map((column) => column.name);
    expect(columns.slice(0, 7)).toEqual([
      'Name',
      'Ready',
      'Status',
      'Namespace',
      'Applied',
      'Generation',
      'Suspended',
    ]);
    expect(table.rows[0]!.cells.slice(0, 7)).toEqual([
      'table',
      'False',
      'Suspended',
      'seed-1234',
      'c0ffee',
      'g-1',
      true,
    ]);
    await client.delete('table');
  });
});

describe('watchSeedFlakes', () => {
  let watch: SeedFlakeWatch | undefined;
  const seen: string[][] = [];

  afterAll(async () => {
    await watch?.stop();
  });

  async function until(check: (flakes: string[]) => boolean): Promise<void> {
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      if (seen.length > 0 && check(seen.at(-1)!)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`the watch saw ${JSON.stringify(seen.at(-1))}`);
  }

  const describeAll = (flakes: SeedFlakeResource[]) =>
    flakes.map((flake) => `${flake.metadata.name}:${flake.spec.suspend}`).sort();

  it('hears SeedFlakes come, change and go, and lists them whole each time', async () => {
    await client.apply('first', spec());
    watch = watchSeedFlakes(
      config,
      (flakes) => seen.push(describeAll(flakes)),
      (error) => {
        throw error;
      },
    );
    await until((flakes) => flakes.join() === 'first:false');
    expect(watch.synced()).toBe(true);

    await client.apply('second', spec({ flake: 'github:acme/second', secretKey: 'second' }));
    await until((flakes) => flakes.join() === 'first:false,second:false');
    await client.apply('first', spec({ suspend: true }));
    await until((flakes) => flakes.join() === 'first:true,second:false');
    await client.delete('second');
    await until((flakes) => flakes.join() === 'first:true');
    await client.delete('first');
    await until((flakes) => flakes.length === 0);
  });
});
