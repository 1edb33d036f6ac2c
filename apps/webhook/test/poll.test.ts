import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { REDIS_USERS } from '@seed/builds-queue';
import { BUILDS_QUEUE, buildJobId, gitRemoteOf, type BuildJob } from '@seed/contracts';
import { FlakeRepo, startRedis, type LocalRedis } from '@seed/testing';
import { Queue } from 'bullmq';
import { BranchHeadUnknown, readBranchHead } from '../src/branch-head';
import { loadWebhookConfig } from '../src/config';
import { parseFlakeRegistry } from '../src/flake-registry';
import { createWebhookApp } from '../src/webhook.app';
import { gitlabPush } from './forge-payloads';

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 20_000) {
  for (const deadline = Date.now() + timeoutMs; !(await condition());) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the git remote a flake is polled at', () => {
  it.each([
    ['github:acme/app', { url: 'https://github.com/acme/app.git' }],
    ['github:acme/app/release', { url: 'https://github.com/acme/app.git', ref: 'release' }],
    [
      'git+https://gitea.example/acme/app.git?ref=prod',
      { url: 'https://gitea.example/acme/app.git', ref: 'prod' },
    ],
    ['git+ssh://git@gitea.example/acme/app.git', { url: 'ssh://git@gitea.example/acme/app.git' }],
    ['git+file:///srv/app', { url: 'file:///srv/app' }],
    ['path:/srv/app', undefined],
    ['tarball+https://example.org/app.tar.gz', undefined],
  ])('%s', (flake, remote) => {
    expect(gitRemoteOf(flake)).toEqual(remote);
  });

  it('says which flakes are not polled, and why', () => {
    const registry = parseFlakeRegistry(
      `
flakes:
  - { flake: "github:acme/app", repository: acme/app, secret: s }
  - { flake: "git+https://gitea.example/acme/app.git", repository: gitea.example/acme/app, secret: s }
  - { flake: "git+https://gitea.example/acme/b.git", repository: gitea.example/acme/b, secret: s, forge: gitea, pollIntervalSeconds: 60 }
  - { flake: "path:/srv/app", repository: acme/path, secret: s }
  - { flake: "github:acme/off", repository: acme/off, secret: s, pollIntervalSeconds: 0 }
`,
      'test',
      {},
    );
    const plans = registry.pollPlans(300);
    expect(plans.get('github:acme/app')).toMatchObject({
      polled: { forge: 'github', intervalMs: 300_000 },
    });
    expect(plans.get('git+https://gitea.example/acme/app.git')).toEqual({
      skipped: expect.stringMatching(/set its forge/),
    });
    expect(plans.get('git+https://gitea.example/acme/b.git')).toMatchObject({
      polled: { forge: 'gitea', intervalMs: 60_000 },
    });
    expect(plans.get('path:/srv/app')).toEqual({ skipped: expect.stringMatching(/not a git/) });
    expect(plans.get('github:acme/off')).toEqual({ skipped: expect.stringMatching(/off/) });
  });

  it('refuses a bad interval or forge in the registry, naming the entry', () => {
    expect(() =>
      parseFlakeRegistry(
        '[{ flake: "github:a/b", repository: a/b, secret: s, pollIntervalSeconds: -1, forge: bitbucket }]',
        'test',
        {},
      ),
    ).toThrow(/flakes\[0\] \(github:a\/b\)\.pollIntervalSeconds: .*\n?.*forge/s);
  });
});

describe('reading a branch head with git ls-remote', () => {
  let repo: FlakeRepo;

  beforeAll(async () => {
    repo = await FlakeRepo.create({ 'flake.nix': '{ outputs = _: { }; }' });
  });

  afterAll(async () => {
    await repo.dispose();
  });

  it('follows the default branch, or the one named', async () => {
    const remote = gitRemoteOf(repo.url())!.url;
    expect(await readBranchHead(remote, undefined, 10_000)).toEqual({
      ref: 'refs/heads/main',
      commit: await repo.head(),
    });
    expect(await readBranchHead(remote, 'main', 10_000)).toEqual({
      ref: 'refs/heads/main',
      commit: await repo.head(),
    });
  });

  it('fails clearly for a missing branch or an unreachable remote', async () => {
    const remote = gitRemoteOf(repo.url())!.url;
    await expect(readBranchHead(remote, 'nope', 10_000)).rejects.toThrow(
      new BranchHeadUnknown(`git ls-remote ${remote}: no refs/heads/nope`),
    );
    await expect(readBranchHead('file:///nonexistent/repo', 'main', 10_000)).rejects.toThrow(
      BranchHeadUnknown,
    );
  });
});

describe('polling as the safety net under webhooks', () => {
  let redis: LocalRedis;
  let repo: FlakeRepo;
  let app: NestFastifyApplication;
  let url: string;
  let queue: Queue<BuildJob>;
  let flake: string;

  beforeAll(async () => {
    redis = await startRedis();
    repo = await FlakeRepo.create({ 'flake.nix': '{ outputs = _: { }; }' });
    flake = repo.url();
    const config = loadWebhookConfig({
      SEED_FLAKES: JSON.stringify([
        {
          flake,
          repository: 'gitlab.example/group/app',
          secret: 'gitlab-token',
          forge: 'gitlab',
          pollIntervalSeconds: 1,
        },
      ]),
      ...redis.serviceEnv(REDIS_USERS.webhook),
      SEED_WEBHOOK_PORT: '0',
      SEED_REDIS_COMMAND_TIMEOUT_MS: '500',
      SEED_LOG_LEVEL: 'silent',
    });
    app = await createWebhookApp(config);
    await app.listen(0, '127.0.0.1');
    url = await app.getUrl();
    queue = new Queue<BuildJob>(BUILDS_QUEUE, {
      connection: { host: redis.host, port: redis.port, ...redis.admin },
    });
  });

  afterAll(async () => {
    await app?.close();
    await queue?.close();
    await redis?.dispose();
    await repo?.dispose();
  });

  const built = async (commit: string) =>
    (await queue.getJob(buildJobId(flake, commit))) !== undefined;

  /** A GitLab push delivery of `commit` to the flake's branch, taken with 202. */
  const deliver = async (commit: string, idempotencyKey: string) => {
    const delivery = await fetch(`${url}/webhook`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-gitlab-event': 'Push Hook',
        'x-gitlab-token': 'gitlab-token',
        'idempotency-key': idempotencyKey,
      },
      body: JSON.stringify(gitlabPush('gitlab.example', 'group/app', commit)),
    });
    expect(delivery.status).toBe(202);
  };

  it('queues a pushed commit no delivery announced, within an interval', async () => {
    const commit = await repo.commit({ 'a.txt': 'a' });
    await until('the polled build', () => built(commit));
    const job = await queue.getJob(buildJobId(flake, commit));
    expect(job?.data).toMatchObject({ flake, commit, ref: 'refs/heads/main', forge: 'gitlab' });
  });

  it('catches up a push made while Redis was down, with nothing resent', async () => {
    await redis.stop();
    const commit = await repo.commit({ 'b.txt': 'b' });
    // Polls fail meanwhile (and are counted so); none is lost for good.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await redis.start();
    await until('the build after Redis came back', () => built(commit));
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/seed_webhook_polls_total\{outcome="unavailable"\} [1-9]/);
    expect(metrics).toMatch(/seed_webhook_polls_total\{outcome="queued"\} [2-9]/);
  });

  it('never builds a commit twice when a delivery and a poll both see it', async () => {
    const commit = await repo.commit({ 'c.txt': 'c' });
    await deliver(commit, 'delivery-c');
    // Several polls see the same head meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
    expect(jobs.filter((job) => job.data.commit === commit)).toHaveLength(1);
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(
      /seed_webhook_polls_total\{outcome="unchanged"\} [1-9]/,
    );
  });

  it('queues nothing for a head built before that is no longer the latest', async () => {
    const git = (...args: string[]) => promisify(execFile)('git', ['-C', repo.dir, ...args]);
    // A commit a delivery announced that no poll saw: made off the branch.
    const tree = (await git('rev-parse', 'HEAD^{tree}')).stdout.trim();
    const parent = await repo.head();
    const delivered = (await git('commit-tree', tree, '-p', parent, '-m', 'd')).stdout.trim();
    await deliver(delivered, 'delivery-d');
    const polled = await repo.commit({ 'e.txt': 'e' });
    await until('the polled build of the next head', () => built(polled));
    const queuedPolls = async () =>
      Number(
        /seed_webhook_polls_total\{outcome="queued"\} (\d+)/.exec(
          await (await fetch(`${url}/metrics`)).text(),
        )?.[1],
      );
    const queuedBefore = await queuedPolls();
    // The branch moves to the delivered commit: built before, no longer the latest.
    await git('reset', '--quiet', '--hard', delivered);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await queuedPolls()).toBe(queuedBefore);
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
    expect(jobs.filter((job) => job.data.commit === delivered)).toHaveLength(1);
  });
});
