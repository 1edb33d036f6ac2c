// `seed rebuild` (issue 19, item 4): the request is an annotation on the SeedFlake (the API
// server authenticates it), the webhook queues the build under the request's own job id
// and answers in the status. Real API server with the CRD, Redis and git.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { REBUILD_ANNOTATION, buildJobId, gitRemoteOf, type BuildJob } from '@seed/contracts';
import { SeedFlakeClient, SeedFlakeOperationError, requestRebuild } from '@seed/seed-flakes';
import { createLogger } from '@seed/service-kit';
import {
  FlakeRepo,
  installSeedFlakeCrd,
  startKubeApiServer,
  startRedis,
  type KubeApiServer,
  type LocalRedis,
} from '@seed/testing';
import { Queue } from 'bullmq';
import { readBranchHead } from '../src/branch-head';
import { BranchPoller } from '../src/branch-poller';
import { WebhookMetrics } from '../src/metrics';
import { startSeedFlakeWebhook } from './seed-flake-webhook';

let api: KubeApiServer;
let redis: LocalRedis;
let repo: FlakeRepo;
let secrets: string;
let app: NestFastifyApplication;
let appClosed = false;
let url: string;
let config: KubeConfig;
let flakes: SeedFlakeClient;
let queue: Queue<BuildJob>;

beforeAll(async () => {
  [api, redis, repo] = await Promise.all([
    startKubeApiServer(),
    startRedis(),
    FlakeRepo.create({ 'flake.nix': '{ outputs = _: { }; }' }),
  ]);
  await installSeedFlakeCrd(api);
  config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  flakes = new SeedFlakeClient(config, 'seed-test');
  secrets = await mkdtemp(path.join(tmpdir(), 'seed-webhook-secrets-'));
  await writeFile(path.join(secrets, 'app'), 'app-secret\n');
  await flakes.apply('app', {
    flake: repo.url(),
    repository: 'gitea.example/acme/app',
    forge: 'gitea',
    secretKey: 'app',
  });
  ({ app, url, queue } = await startSeedFlakeWebhook(api, redis, secrets, {
    SEED_REDIS_COMMAND_TIMEOUT_MS: '500',
  }));
}, 20 * 60_000);

afterAll(async () => {
  if (!appClosed) await app?.close();
  await queue?.close();
  await Promise.all([api?.stop(), redis?.dispose(), repo?.dispose()]);
  if (secrets) await rm(secrets, { recursive: true, force: true });
});

async function events(reason: string): Promise<string[]> {
  const list = await config.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: 'default' });
  return list.items
    .filter((event) => event.involvedObject.name === 'app' && event.reason === reason)
    .map((event) => event.message ?? '');
}

async function rebuildsCounted(outcome: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = new RegExp(`^seed_webhook_rebuilds_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm');
  return Number(match.exec(text)?.[1] ?? 0);
}

describe('seed rebuild', () => {
  it('queues the branch head under its own job id, answers in the status, and names who asked', async () => {
    const head = await repo.head();
    const done = await requestRebuild(config, 'app', { waitMs: 30_000 });
    expect(done).toMatchObject({ seedFlake: 'app', flake: repo.url(), commit: head });
    expect(done.jobId).toMatch(new RegExp(`^${buildJobId(repo.url(), head)}-rebuild-[a-z0-9-]+$`));
    const job = await queue.getJob(done.jobId);
    expect(job?.data).toMatchObject({
      flake: repo.url(),
      commit: head,
      ref: 'refs/heads/main',
      forge: 'gitea',
      rebuild: expect.any(String),
    });
    expect(job?.data.allowBackward).toBeUndefined();
    const resource = await flakes.get('app');
    expect(resource?.status?.lastHandledRebuild).toMatchObject({
      commit: head,
      jobId: done.jobId,
    });
    expect(JSON.parse(resource!.metadata.annotations![REBUILD_ANNOTATION]!)).toMatchObject({
      by: done.by,
    });
    expect(await events('RebuildRequested')).toContainEqual(
      `rebuild of the branch head requested by ${done.by}`,
    );
  });

  it('is what a poll of an unchanged head finds: nothing new to queue', async () => {
    const done = await requestRebuild(config, 'app', { waitMs: 30_000 });
    const queued: string[] = [];
    const poller = new BranchPoller(
      [],
      (branch) => readBranchHead(branch.remote, branch.branch, 10_000),
      {
        latestJobId: () => Promise.resolve(done.jobId),
        queue: (_forge, deliveryId) => {
          queued.push(deliveryId);
          return Promise.reject(new Error('a poll of an unchanged head queues nothing'));
        },
      },
      new WebhookMetrics({
        depth: () => Promise.resolve({}),
        oldestWaitingSeconds: () => Promise.resolve(0),
      }),
      createLogger('webhook', 'silent'),
    );
    const remote = gitRemoteOf(repo.url())!.url;
    const outcome = await poller.poll({
      flake: repo.url(),
      remote,
      forge: 'gitea',
      quota: undefined,
      intervalMs: 60_000,
    });
    expect({ outcome, queued }).toEqual({ outcome: 'unchanged', queued: [] });
  });

  it('builds a commit built before again: each request is a build of its own', async () => {
    const first = await requestRebuild(config, 'app', { waitMs: 30_000 });
    const second = await requestRebuild(config, 'app', { waitMs: 30_000 });
    expect(second.commit).toBe(first.commit);
    expect(second.jobId).not.toBe(first.jobId);
    expect(await queue.getJob(second.jobId)).toBeDefined();
  });

  it('deploys a commit it names even when it is older than the head', async () => {
    const older = await repo.head();
    await repo.commit({ 'a.txt': 'a' });
    const done = await requestRebuild(config, 'app', { commit: older, waitMs: 30_000 });
    expect(done.commit).toBe(older);
    expect((await queue.getJob(done.jobId))?.data).toMatchObject({
      commit: older,
      allowBackward: true,
    });
  });

  it('refuses a suspended flake, at the CLI and at the webhook', async () => {
    await flakes.patch('app', { spec: { suspend: true } });
    await expect(requestRebuild(config, 'app', { waitMs: 5_000 })).rejects.toThrow(
      new SeedFlakeOperationError(
        'SeedFlake app is suspended: a rebuild would undo what suspended it (a rollback); seed resume app first',
      ),
    );
    // Annotated by hand (kubectl annotate): the webhook refuses it in the status.
    await flakes.patch('app', {
      metadata: { annotations: { [REBUILD_ANNOTATION]: JSON.stringify({ id: 'by-hand-1' }) } },
    });
    let answer;
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      answer = (await flakes.get('app'))?.status?.lastHandledRebuild;
      if (answer?.id === 'by-hand-1') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(answer).toMatchObject({ id: 'by-hand-1', error: expect.stringMatching(/suspended/) });
    expect(answer?.jobId).toBeUndefined();
    expect(await rebuildsCounted('refused')).toBeGreaterThanOrEqual(1);
    await flakes.patch('app', { spec: { suspend: false } });
  });

  it('takes a request made while Redis was down once it is back, with nothing asked again', async () => {
    await redis.stop();
    const asked = requestRebuild(config, 'app', { waitMs: 60_000 });
    // The webhook tries, fails and counts it; the request stays on the SeedFlake.
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      if ((await rebuildsCounted('unavailable')) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await rebuildsCounted('unavailable')).toBeGreaterThan(0);
    await redis.start();
    const done = await asked;
    expect(await queue.getJob(done.jobId)).toBeDefined();
  });

  it('says so when no webhook answers in time, and that the request stays', async () => {
    await app.close();
    appClosed = true;
    await expect(requestRebuild(config, 'app', { waitMs: 1_500 })).rejects.toThrow(
      /no webhook answered the rebuild request [a-z0-9-]+ within 2 s; it stays on SeedFlake app/,
    );
  });
});
