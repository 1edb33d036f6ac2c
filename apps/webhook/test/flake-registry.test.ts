import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  DEFAULT_FLAKE_QUOTA,
  DEFAULT_MAX_QUEUED_BUILDS,
  deriveNamespace,
  flakeHookId,
} from '@seed/contracts';
import { ConfigError } from '@seed/service-kit';
import { collidingFlakeUris } from '@seed/testing';
import { loadWebhookConfig } from '../src/config';
import { parseFlakeRegistry } from '../src/flake-registry';

function problems(action: () => unknown): string[] {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('the flake registry', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'seed-registry-'));
    await writeFile(path.join(dir, 'secret'), 'from-a-file\n');
    await writeFile(path.join(dir, 'redis-password'), 'redis-password\n');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads YAML entries with secrets given inline, by file or by variable', () => {
    const registry = parseFlakeRegistry(
      [
        'flakes:',
        '  - flake: github:acme/app',
        '    repository: https://github.com/Acme/App.git',
        '    secret: inline',
        '  - flake: git+https://gitea.example/acme/site.git',
        '    repository: gitea.example/acme/site',
        '    branch: release/1',
        `    secretFile: ${path.join(dir, 'secret')}`,
        '    maxQueuedBuilds: 20',
        '  - flake: git+ssh://git@gitlab.example/group/api.git',
        '    repository: group/api',
        '    secretEnv: API_HOOK_SECRET',
      ].join('\n'),
      'flakes.yaml',
      { API_HOOK_SECRET: 'from-env' },
    );
    expect(registry.flakes).toMatchObject([
      {
        flake: 'github:acme/app',
        repository: 'github.com/acme/app',
        branch: undefined,
        secret: 'inline',
        hookId: flakeHookId('github:acme/app', 'inline'),
        maxQueuedBuilds: DEFAULT_MAX_QUEUED_BUILDS,
        quota: DEFAULT_FLAKE_QUOTA,
        suspended: false,
      },
      {
        flake: 'git+https://gitea.example/acme/site.git',
        repository: 'gitea.example/acme/site',
        branch: 'release/1',
        secret: 'from-a-file',
        hookId: flakeHookId('git+https://gitea.example/acme/site.git', 'from-a-file'),
        maxQueuedBuilds: 20,
        quota: DEFAULT_FLAKE_QUOTA,
        suspended: false,
      },
      {
        flake: 'git+ssh://git@gitlab.example/group/api.git',
        repository: 'group/api',
        branch: undefined,
        secret: 'from-env',
        hookId: flakeHookId('git+ssh://git@gitlab.example/group/api.git', 'from-env'),
        maxQueuedBuilds: DEFAULT_MAX_QUEUED_BUILDS,
        quota: DEFAULT_FLAKE_QUOTA,
        suspended: false,
      },
    ]);
    expect(
      registry.following({ names: ['group/api', 'gitlab.example/group/api'] }).map((f) => f.flake),
    ).toEqual(['git+ssh://git@gitlab.example/group/api.git']);
    expect(registry.byHook(flakeHookId('github:acme/app', 'inline'))?.flake).toBe(
      'github:acme/app',
    );
  });

  it('reports every bad entry by index and flake', () => {
    const found = problems(() =>
      parseFlakeRegistry(
        JSON.stringify([
          { flake: 'https://example.org/app.git', repository: 'a/b', secret: 'x' },
          { flake: 'github:acme/app', repository: 'acme/app' },
          { flake: 'github:acme/two', repository: 'acme/two', secret: 'x', secretEnv: 'X' },
          {
            flake: 'github:acme/three',
            repository: 'acme/three',
            secret: 'x',
            branch: 'bad..name',
          },
          { flake: 'github:acme/four', repository: 'acme/four', secretEnv: 'UNSET_SECRET' },
          { flake: 'github:acme/four', repository: 'acme/four', secret: 'x' },
          { flake: 'github:acme/five', repository: 'acme/five', secret: 'x', colour: 'blue' },
          { flake: 'github:acme/six', repository: 'acme/six', secret: 'x', maxQueuedBuilds: 0 },
          { flake: 'github:acme/seven', repository: 'a/7', secret: 'x', maxQueuedBuilds: 2.5 },
          {
            flake: 'github:acme/eight',
            repository: 'a/8',
            secret: 'x',
            forgeStatus: { api: 'https://u:p@api.github.com', tokenFile: 'token' },
          },
        ]),
        'flakes.json',
        {},
      ),
    );
    expect(found).toEqual([
      expect.stringMatching(
        /^flakes\.json: flakes\[0\] \(https:\/\/example\.org\/app\.git\)\.flake: .*unsupported scheme/,
      ),
      'flakes.json: flakes[1] (github:acme/app): give exactly one of secret, secretFile or secretEnv (webhook secrets have no default)',
      'flakes.json: flakes[2] (github:acme/two): give exactly one of secret, secretFile or secretEnv (webhook secrets have no default)',
      'flakes.json: flakes[3] (github:acme/three).branch: is not a valid git branch name',
      'flakes.json: flakes[4] (github:acme/four).secretEnv: UNSET_SECRET is not set',
      expect.stringContaining('flakes[6] (github:acme/five): Unrecognized key: "colour"'),
      'flakes.json: flakes[7] (github:acme/six).maxQueuedBuilds: must be at least 1',
      'flakes.json: flakes[8] (github:acme/seven).maxQueuedBuilds: must be a whole number of builds',
      'flakes.json: flakes[9] (github:acme/eight).forgeStatus.api: must not carry credentials: give them in tokenFile',
      'flakes.json: flakes[9] (github:acme/eight).forgeStatus.tokenFile: expected an absolute path',
    ]);
  });

  it("takes a flake's caps over the defaults", () => {
    const registry = parseFlakeRegistry(
      [
        'flakes:',
        '  - flake: github:acme/app',
        '    repository: acme/app',
        '    secret: s',
        '    quota: { cpu: "4", memory: 8Gi, pods: 10 }',
      ].join('\n'),
      'flakes.yaml',
      {},
    );
    expect(registry.flakes[0]?.quota).toEqual({
      ...DEFAULT_FLAKE_QUOTA,
      cpu: '4',
      memory: '8Gi',
      pods: 10,
    });
  });

  it('refuses bad caps at start-up, naming the flake and the cap', () => {
    const found = problems(() =>
      parseFlakeRegistry(
        JSON.stringify([
          {
            flake: 'github:acme/app',
            repository: 'acme/app',
            secret: 'x',
            quota: { cpu: 'lots', memory: '8 GB', storage: '-1Gi', pods: 0, services: 2.5 },
          },
          { flake: 'github:acme/two', repository: 'acme/two', secret: 'x', quota: { gpus: 1 } },
        ]),
        'flakes.json',
        {},
      ),
    );
    expect(found).toEqual([
      'flakes.json: flakes[0] (github:acme/app).quota.cpu: expected a CPU quantity above zero, such as "8" or "500m"',
      'flakes.json: flakes[0] (github:acme/app).quota.memory: expected a whole number of bytes above zero, such as "16Gi" or "500M"',
      'flakes.json: flakes[0] (github:acme/app).quota.storage: expected a whole number of bytes above zero, such as "16Gi" or "500M"',
      'flakes.json: flakes[0] (github:acme/app).quota.pods: expected at least 1',
      'flakes.json: flakes[0] (github:acme/app).quota.services: expected a whole number',
      'flakes.json: flakes[1] (github:acme/two).quota: Unrecognized key: "gpus"',
    ]);
  });

  it('attack: a flake URI carrying credentials is refused at load, without repeating them', () => {
    const found = problems(() =>
      parseFlakeRegistry(
        `flakes:
  - flake: git+https://deploy:hunter2@git.example.org/acme/app.git
    repository: acme/app
    secret: s`,
        'SEED_FLAKES',
        {},
      ),
    );
    expect(found).toEqual([expect.stringContaining('carries credentials')]);
    expect(found[0]).toContain('git+https://***:***@git.example.org/acme/app.git');
    expect(found.join('\n')).not.toContain('hunter2');
  });

  it('attack: two flakes that map to one namespace are refused at start-up', () => {
    const [first, second] = collidingFlakeUris();
    expect(deriveNamespace(first)).toBe(deriveNamespace(second));
    const found = problems(() =>
      parseFlakeRegistry(
        JSON.stringify([
          { flake: first, repository: 'tenant/one', secret: 'x' },
          { flake: second, repository: 'tenant/two', secret: 'y' },
        ]),
        'flakes.json',
        {},
      ),
    );
    expect(found).toEqual([
      `flakes.json: flakes ${first} and ${second} map to one namespace (${deriveNamespace(first)}); register only one of them`,
    ]);
  });

  it('refuses documents that are not a list of flakes', () => {
    expect(problems(() => parseFlakeRegistry('flakes: [', 'x.yaml', {}))[0]).toContain(
      'not valid YAML or JSON',
    );
    expect(problems(() => parseFlakeRegistry('flake: github:a/b', 'x.yaml', {}))).toEqual([
      'x.yaml: expected "flakes: [...]" or a list of flakes',
    ]);
  });

  it('comes from the SeedFlakes unless a document is given, checked with the rest of the environment', () => {
    const redisPassword = { SEED_REDIS_PASSWORD_FILE: path.join(dir, 'redis-password') };
    expect(loadWebhookConfig(redisPassword).flakes).toEqual({
      seedFlakes: { secretsDir: '/etc/seed/webhook-secrets', resyncMs: 30_000 },
    });
    expect(
      problems(() =>
        loadWebhookConfig({ ...redisPassword, SEED_FLAKES_FILE: '/nonexistent/flakes.yaml' }),
      )[0],
    ).toContain('SEED_FLAKES_FILE: cannot read /nonexistent/flakes.yaml');
    expect(
      problems(() =>
        loadWebhookConfig({
          ...redisPassword,
          SEED_WEBHOOK_PORT: 'eighty',
          SEED_REDIS_URL: 'localhost',
        }),
      ),
    ).toEqual([
      expect.stringMatching(/^SEED_WEBHOOK_PORT="eighty": /),
      'SEED_REDIS_URL="localhost": expected redis://HOST:PORT[/DB] or rediss://…',
    ]);
  });

  it('needs a Redis password file and keeps credentials out of the URL', () => {
    expect(problems(() => loadWebhookConfig({ SEED_FLAKES: '[]' }))).toEqual([
      "SEED_REDIS_PASSWORD_FILE: required: a file holding the Redis user's password (a mounted Secret)",
    ]);
    expect(
      problems(() =>
        loadWebhookConfig({
          SEED_REDIS_URL: 'redis://seed-webhook:hunter2@redis:6379',
          SEED_REDIS_PASSWORD_FILE: path.join(dir, 'missing'),
        }),
      ),
    ).toEqual([
      expect.stringMatching(/^SEED_REDIS_URL=.*: credentials do not belong in the URL/),
      expect.stringMatching(/^SEED_REDIS_PASSWORD_FILE=.*: cannot read it: ENOENT/),
    ]);
  });
});
