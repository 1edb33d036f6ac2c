// The webhook serving SeedFlakes from a real API server (issue 19, item 1): flakes added,
// suspended, re-keyed and deleted take effect without a restart; SeedFlakes it cannot
// serve are left out and counted.
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { deriveNamespace, flakeHookId, type BuildJob } from '@seed/contracts';
import { SeedFlakeClient } from '@seed/seed-flakes';
import {
  collidingFlakeUris,
  githubPushHeaders,
  installSeedFlakeCrd,
  startKubeApiServer,
  startRedis,
  type KubeApiServer,
  type LocalRedis,
} from '@seed/testing';
import { Queue } from 'bullmq';
import { startSeedFlakeWebhook } from './seed-flake-webhook';
import { githubPush } from './forge-payloads';

const HELLO = 'github:Codertocat/Hello-World';
const REPOSITORY = 'github.com/Codertocat/Hello-World';

let api: KubeApiServer;
let redis: LocalRedis;
let secrets: string;
let app: NestFastifyApplication;
let url: string;
let flakes: SeedFlakeClient;
let queue: Queue<BuildJob>;
let counter = 0;

beforeAll(async () => {
  [api, redis] = await Promise.all([startKubeApiServer(), startRedis()]);
  await installSeedFlakeCrd(api);
  const config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  flakes = new SeedFlakeClient(config, 'seed-test');
  secrets = await mkdtemp(path.join(tmpdir(), 'seed-webhook-secrets-'));
  await writeFile(path.join(secrets, 'hello'), 'hello-secret\n');
  ({ app, url, queue } = await startSeedFlakeWebhook(api, redis, secrets));
}, 20 * 60_000);

afterAll(async () => {
  await app?.close();
  await queue?.close();
  await Promise.all([api?.stop(), redis?.dispose()]);
  if (secrets) await rm(secrets, { recursive: true, force: true });
});

/** A signed push of a new commit to Hello-World; the answer's status and body. */
async function push(
  secret = 'hello-secret',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = JSON.stringify(githubPush((++counter).toString(16).padStart(40, 'a')));
  const response = await fetch(`${url}/webhook`, {
    method: 'POST',
    headers: { ...githubPushHeaders(body, secret, `d-${counter}`), 'x-github-event': 'push' },
    body,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Retries `check` until it holds: the webhook hears of a change through its watch. */
async function eventually<T>(action: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  let value = await action();
  for (const deadline = Date.now() + 20_000; !check(value) && Date.now() < deadline;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await action();
  }
  return value;
}

async function flakeCounts(): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Object.fromEntries(
    [...text.matchAll(/^seed_webhook_flakes\{state="(\w+)"\} (\d+)$/gm)].map((m) => [
      m[1]!,
      Number(m[2]),
    ]),
  );
}

describe('a webhook following SeedFlakes', () => {
  it('is ready once it has listed them, and refuses pushes for flakes it does not have', async () => {
    const ready = await eventually(
      () => fetch(`${url}/readyz`),
      (response) => response.status === 200,
    );
    expect(ready.status).toBe(200);
    expect((await push()).status).toBe(401);
  });

  it('serves a SeedFlake as soon as it is created, with its caps, without a restart', async () => {
    await flakes.apply('hello', {
      flake: HELLO,
      repository: REPOSITORY,
      secretKey: 'hello',
      quota: { pods: 7 },
      forgeStatus: { api: 'https://api.github.com', tokenFile: '/run/secrets/github' },
    });
    const sent = await eventually(push, (answer) => answer.status === 202);
    expect(sent.body).toMatchObject({ status: 'queued' });
    const [job] = await queue.getJobs(['waiting']);
    expect(job!.data).toMatchObject({
      flake: HELLO,
      quota: { pods: 7 },
      forgeStatus: {
        api: 'https://api.github.com',
        repository: 'codertocat/hello-world',
        tokenFile: '/run/secrets/github',
      },
    });
    // Its own delivery URL works too: the hook id follows from the flake and its secret.
    const hook = flakeHookId(HELLO, 'hello-secret');
    const body = JSON.stringify(githubPush('f'.repeat(40)));
    const own = await fetch(`${url}/hooks/${hook}`, {
      method: 'POST',
      headers: { ...githubPushHeaders(body, 'hello-secret', 'own-1'), 'x-github-event': 'push' },
      body,
    });
    expect(own.status).toBe(202);
    expect(await flakeCounts()).toMatchObject({ served: 1, suspended: 0, refused: 0 });
    // The last commit queued is the SeedFlake's lastFetchedRevision.
    const fetched = await eventually(
      async () => (await flakes.get('hello'))?.status?.lastFetchedRevision,
      (revision) => revision === 'f'.repeat(40),
    );
    expect(fetched).toBe('f'.repeat(40));
  });

  it('queues nothing for a suspended flake, and says so', async () => {
    await flakes.patch('hello', { spec: { suspend: true } });
    const sent = await eventually(push, (answer) => answer.body.status === 'ignored');
    expect(sent).toEqual({
      status: 202,
      body: expect.objectContaining({
        status: 'ignored',
        reason: 'every flake this push deploys is suspended (seed resume lifts it)',
        suspended: [HELLO],
      }),
    });
    expect(await flakeCounts()).toMatchObject({ served: 0, suspended: 1 });
    await flakes.patch('hello', { spec: { suspend: false } });
    expect((await eventually(push, (answer) => answer.status === 202)).status).toBe(202);
  });

  it('takes a rotated secret from the mounted Secret, and refuses a flake whose secret is gone', async () => {
    await writeFile(path.join(secrets, 'hello'), 'rotated\n');
    expect(
      (
        await eventually(
          () => push('rotated'),
          (answer) => answer.status === 202,
        )
      ).status,
    ).toBe(202);
    expect((await push('hello-secret')).status).toBe(401);
    await unlink(path.join(secrets, 'hello'));
    expect(
      (
        await eventually(
          () => push('rotated'),
          (answer) => answer.status === 401,
        )
      ).status,
    ).toBe(401);
    expect(await flakeCounts()).toMatchObject({ served: 0, refused: 1 });
    await writeFile(path.join(secrets, 'hello'), 'hello-secret\n');
  });

  it('attack: a SeedFlake whose URI maps to a served flake’s namespace is not served', async () => {
    const [first, second] = collidingFlakeUris();
    expect(deriveNamespace(first)).toBe(deriveNamespace(second));
    await flakes.apply('older', { flake: first, repository: 'acme/older', secretKey: 'hello' });
    await new Promise((resolve) => setTimeout(resolve, 1100)); // creation times are in seconds
    await flakes.apply('younger', {
      flake: second,
      repository: 'acme/younger',
      secretKey: 'hello',
    });
    const counts = await eventually(flakeCounts, (c) => c.refused === 1);
    expect(counts).toMatchObject({ served: 2, refused: 1 });
    await flakes.delete('older');
    expect(await eventually(flakeCounts, (c) => c.refused === 0)).toMatchObject({ served: 2 });
    await flakes.delete('younger');
  });

  it('stops serving a deleted SeedFlake', async () => {
    await flakes.delete('hello');
    expect((await eventually(push, (answer) => answer.status === 401)).status).toBe(401);
    expect(await eventually(flakeCounts, (c) => c.served === 0)).toMatchObject({ served: 0 });
  });
});
