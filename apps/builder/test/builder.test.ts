import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  BUILD_JOB_NAME,
  DEFAULT_FLAKE_QUOTA,
  buildJobId,
  buildListSchema,
  buildJobOptions,
  buildRecordSchema,
  deriveNamespace,
  parseSeedMeta,
  type BuildJob,
} from '@seed/contracts';
import type { FlakeRepo, LocalRedis } from '@seed/testing';
import { startBuilderStack, type BuilderStack } from './builder-stack';
import type { FakeReconciler } from './fake-reconciler';
import { Pushes, commit, finished, flake, getBuilds } from './harness';

let stack: BuilderStack;
let redis: LocalRedis;
let reconciler: FakeReconciler;
let url: string;
let pushes: Pushes;
const repos: FlakeRepo[] = [];

async function repo(seeds: Parameters<typeof flake>[0]): Promise<FlakeRepo> {
  const created = await flake(seeds);
  repos.push(created);
  return created;
}

let historyDir: string;

beforeAll(async () => {
  historyDir = await mkdtemp(path.join(tmpdir(), 'seed-history-'));
  stack = await startBuilderStack({
    SEED_HISTORY_DIR: historyDir,
    SEED_BUILDER_CONCURRENCY: '2',
    SEED_APPLY_ATTEMPTS: '8',
    SEED_APPLY_BACKOFF_MS: '100',
    SEED_APPLY_DEADLINE_MS: '2000',
  });
  ({ redis, reconciler, url, pushes } = stack);
});

afterAll(async () => {
  await stack?.stop();
  await Promise.all(repos.map((r) => r.dispose()));
  if (historyDir) await rm(historyDir, { recursive: true, force: true });
});

describe('a push', () => {
  it('builds the flake and delivers the right generation and instances', async () => {
    const web = await repo({
      web: { seed: { expose: { http: 8080 } } },
      db: { seed: { size: 'm', storage: { data: '10Gi' } } },
    });
    const jobId = await pushes.push(web, await web.head());
    const record = await finished(url, jobId);
    expect(record).toMatchObject({
      state: 'succeeded',
      attempts: 1,
      namespace: deriveNamespace(web.url()),
      generation: expect.stringMatching(/^[0-9a-f]{12}$/),
      changed: true,
      phases: {
        evaluate: expect.any(Number),
        build: expect.any(Number),
        apply: expect.any(Number),
      },
    });
    const [request] = reconciler.applied.filter((r) => r.flakeUri === web.url());
    expect(request).toMatchObject({
      namespace: record.namespace,
      generation: record.generation,
      revision: record.commit,
    });
    expect(request!.instances.map((i) => i.name)).toEqual(['db', 'web']);
    for (const instance of request!.instances) {
      expect(parseSeedMeta(JSON.parse(instance.metaJson), instance.name).ok).toBe(true);
      expect(instance.image).toMatch(
        new RegExp(`^/nix/store/[0-9a-z]{32}-seed-${instance.name}-image$`),
      );
    }
    expect(record.log.join('\n')).toContain(`applying generation ${record.generation}`);

    // Parsed as the CLI parses them: the answers are the contract's shapes.
    const listed = buildListSchema.parse(
      await (await getBuilds(`${url}/builds?flake=${encodeURIComponent(web.url())}`)).json(),
    );
    expect(listed.builds.map((b) => b.id)).toEqual([jobId]);
    expect(listed.builds[0]).not.toHaveProperty('log');
    const everyFlake = buildListSchema.parse(
      await (await getBuilds(`${url}/builds?limit=200`)).json(),
    );
    expect(everyFlake.builds.map((b) => b.id)).toContain(jobId);
  });

  it('delivers the same generation for a second push that changes nothing', async () => {
    const seeds = { api: { seed: { expose: { grpc: { port: 9000, protocol: 'grpc' } } } } };
    const api = await repo(seeds);
    const first = await finished(url, await pushes.push(api, await api.head()));
    const second = await finished(
      url,
      await pushes.push(api, await api.commit({ 'README.md': 'docs only\n' })),
    );
    expect(second.state).toBe('succeeded');
    expect(second.generation).toBe(first.generation);
    expect(second.changed).toBe(false);
  });

  it('builds two flakes in parallel while one of them is slow', async () => {
    const slow = await repo({ slow: { build: 'sleep 4; echo slow > $out' } });
    const quick = await repo({ quick: {} });
    const slowJob = await pushes.push(slow, await slow.head());
    await new Promise((resolve) => setTimeout(resolve, 300));
    const quickRecord = await finished(url, await pushes.push(quick, await quick.head()));
    const slowState = (await (await getBuilds(`${url}/builds/${slowJob}`)).json()) as {
      state: string;
    };
    expect(quickRecord.state).toBe('succeeded');
    expect(slowState.state).toBe('building');
    expect((await finished(url, slowJob)).state).toBe('succeeded');
  });
});

describe('failures', () => {
  it.each([
    [
      'an evaluation error',
      { web: { metaExpression: '1 + "one"' } },
      'evaluation',
      /cannot add a string to an integer/,
    ],
    ['a validation error', { web: { seed: { size: 'huge' } } }, 'validation', /^seed\.size: /],
    [
      'a build error',
      { web: { build: 'echo compiling; echo broken >&2; exit 2' } },
      'build',
      /failed with exit code 2/,
    ],
  ])('fails %s at once with a useful message', async (_what, seeds, kind, message) => {
    const broken = await repo(seeds);
    const jobId = await pushes.push(broken, await broken.head());
    const record = await finished(url, jobId);
    expect(record.state).toBe('failed');
    expect(record.attempts).toBe(1);
    expect(record.error?.kind).toBe(kind);
    expect(record.error?.message).toMatch(message);
    const job = await pushes.settledJob(jobId);
    expect(job.attemptsMade).toBe(1);
    expect(await job.getState()).toBe('failed');
  });

  it("hands the registry's caps to the reconciler with the generation", async () => {
    const web = await repo({ web: {} });
    const quota = { ...DEFAULT_FLAKE_QUOTA, cpu: '4', pods: 3 };
    const record = await finished(url, await pushes.push(web, await web.head(), quota));
    expect(record.state).toBe('succeeded');
    const [request] = reconciler.applied.filter((r) => r.flakeUri === web.url());
    expect(request?.quota).toEqual(quota);
  });

  it('refuses a flake beyond its caps before building it, naming the cap', async () => {
    const web = await repo({ web: { seed: { rollout: 'rolling' } }, db: {} });
    const quota = { ...DEFAULT_FLAKE_QUOTA, pods: 2 };
    const record = await finished(url, await pushes.push(web, await web.head(), quota));
    expect(record.state).toBe('failed');
    expect(record.attempts).toBe(1);
    expect(record.error).toMatchObject({
      kind: 'quota',
      retryable: false,
      message: expect.stringContaining(
        "quota.pods: the instances request 3 at their peak (a rolling instance runs two pods while it rolls), above the flake's cap of 2",
      ),
    });
    expect(record.phases).not.toHaveProperty('build');
    expect(reconciler.applied.filter((r) => r.flakeUri === web.url())).toEqual([]);
  });

  it('keeps location and log tail for the user', async () => {
    const broken = await repo({ web: { build: 'echo step one; echo it broke >&2; exit 3' } });
    const record = await finished(url, await pushes.push(broken, await broken.head()));
    expect(record.error?.derivation).toMatch(/-seed-web-image\.drv$/);
    expect(record.error?.logTail).toContain('it broke');
    expect(record.log.join('\n')).toContain('> it broke');
  });

  it('fails a missing revision once, as a fetch error', async () => {
    const web = await repo({ web: {} });
    const record = await finished(
      url,
      await pushes.push(web, '0123456789abcdef0123456789abcdef01234567'),
    );
    expect(record).toMatchObject({ state: 'failed', attempts: 1, error: { kind: 'fetch' } });
    expect(record.error?.message).toContain('Cannot find Git revision');
  });

  it('retries an unavailable reconciler and succeeds when it returns', async () => {
    const web = await repo({ web: {} });
    await reconciler.stop();
    const jobId = await pushes.push(web, await web.head());
    for (let waited = 0; ; waited += 100) {
      const record = (await (await getBuilds(`${url}/builds/${jobId}`)).json()) as {
        log?: string[];
      };
      if (record.log?.some((line) => line.includes('reconciler unavailable'))) break;
      if (waited > 30_000) throw new Error('the builder never retried');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await reconciler.listen();
    const record = await finished(url, jobId);
    expect(record.state).toBe('succeeded');
    expect(reconciler.generationsOf(web.url())).toEqual([record.generation]);
  });
});

describe('superseding', () => {
  it('builds at most the first and the last of three quick pushes', async () => {
    const seeds = (text: string) => ({ web: { build: `sleep 2; echo ${text} > $out` } });
    const web = await repo(seeds('one'));
    const ids = [await pushes.push(web, await web.head())];
    ids.push(await pushes.push(web, await commit(web, seeds('two'))));
    ids.push(await pushes.push(web, await commit(web, seeds('three'))));
    const records = await Promise.all(ids.map((id) => finished(url, id)));
    expect(records[1]!.state).toBe('superseded');
    expect(records[2]!.state).toBe('succeeded');
    expect(['superseded', 'succeeded']).toContain(records[0]!.state);
    const applied = reconciler.generationsOf(web.url());
    expect(applied.at(-1)).toBe(records[2]!.generation);
    expect(applied).not.toContain(records[1]!.generation);
  });

  it('shows a build no worker has started as queued', async () => {
    const later = await repo({ web: {} });
    const job: BuildJob = {
      flake: later.url(),
      commit: await later.head(),
      ref: 'refs/heads/main',
      forge: 'github',
      deliveryId: 'delayed',
      receivedAt: new Date().toISOString(),
    };
    // Delayed past the test, so no worker takes it.
    await pushes.queue.add(BUILD_JOB_NAME, job, { ...buildJobOptions(job), delay: 60_000 });
    const jobId = buildJobId(job.flake, job.commit);
    const record = (await (await getBuilds(`${url}/builds/${jobId}`)).json()) as {
      state: string;
      flake: string;
    };
    expect(record).toMatchObject({ state: 'queued', flake: later.url() });
  });

  it('answers bad requests with JSON errors', async () => {
    const badLimit = await getBuilds(`${url}/builds?limit=0`);
    expect(badLimit.status).toBe(400);
    expect(await badLimit.json()).toEqual({ error: 'limit must be an integer from 1 to 200' });
    const missing = await getBuilds(`${url}/builds/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'no build nope' });
    const bad = await getBuilds(`${url}/builds?flake=nixpkgs`);
    expect(bad.status).toBe(400);
  });
});

describe('only forward, unless asked', () => {
  const seeds = (text: string) => ({ web: { build: `echo ${text} > $out` } });
  const rewind = (flakeRepo: FlakeRepo, to: string) =>
    promisify(execFile)('git', ['-C', flakeRepo.dir, 'reset', '--quiet', '--hard', to]);

  it('deploys a descendant of the applied commit, as before', async () => {
    const web = await repo(seeds('one'));
    const a = await web.head();
    expect((await finished(url, await pushes.push(web, a))).state).toBe('succeeded');
    const b = await commit(web, seeds('two'));
    const record = await finished(url, await pushes.push(web, b));
    expect(record.state).toBe('succeeded');
    expect(record.log.join('\n')).toContain(`descends from the applied revision ${a}`);
    expect(reconciler.revisionsOf(web.url())).toEqual([a, b]);
  });

  /**
   * Applies A then B, then delivers A again (`extra` on its job) once the webhook's dedupe
   * and BullMQ's finished job are gone: the record of that last build.
   */
  async function replayOlder(extra: Partial<BuildJob> = {}) {
    // A webhook that remembers a queued commit for 1 s, so that A can be delivered again.
    const replays = new Pushes(redis, 1);
    try {
      const web = await repo(seeds('one'));
      const a = await web.head();
      const first = await finished(url, await replays.push(web, a));
      const b = await commit(web, seeds('two'));
      expect((await finished(url, await replays.push(web, b))).state).toBe('succeeded');
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      await (await replays.queue.getJob(first.id))!.remove();
      const jobId = await replays.pushJob(web, a, extra);
      await replays.settledJob(jobId, 60_000);
      const record = buildRecordSchema.parse(
        await (await getBuilds(`${url}/builds/${jobId}`)).json(),
      );
      return { web, a, b, record };
    } finally {
      await replays.close();
    }
  }

  it('ends a replayed old delivery superseded-by-history, and applies nothing', async () => {
    const { web, a, b, record } = await replayOlder();
    expect(record.state).toBe('superseded-by-history');
    expect(record.reason).toContain(`commit ${a} does not descend from ${b}`);
    expect(record.generation).toBeUndefined();
    expect(reconciler.revisionsOf(web.url())).toEqual([a, b]);
  });

  it('ends a parent that arrives after its child was applied superseded-by-history', async () => {
    const web = await repo(seeds('one'));
    const a = await web.head();
    const b = await commit(web, seeds('two'));
    expect((await finished(url, await pushes.push(web, b))).state).toBe('succeeded');
    const parent = await finished(url, await pushes.push(web, a));
    expect(parent.state).toBe('superseded-by-history');
    expect(parent.reason).toContain(`commit ${a} does not descend from ${b}`);
    expect(parent.phases).toEqual({}); // nothing was evaluated or built
    expect(reconciler.revisionsOf(web.url())).toEqual([b]);
  });

  it('follows a branch rewritten without a forced flag (GitLab, a poll), then goes forward', async () => {
    const web = await repo(seeds('one'));
    const a = await web.head();
    await finished(url, await pushes.push(web, a));
    const b = await commit(web, seeds('two'));
    await finished(url, await pushes.push(web, b));
    // The branch rewritten: C sits on A, and B is on it no more.
    await rewind(web, a);
    const c = await commit(web, seeds('three'));
    const rewritten = await finished(url, await pushes.push(web, c));
    expect(rewritten.state).toBe('succeeded');
    expect(rewritten.log.join('\n')).toContain(`branch main was rewritten: the applied ${b}`);
    const d = await commit(web, seeds('four'));
    expect((await finished(url, await pushes.push(web, d))).state).toBe('succeeded');
    expect(reconciler.revisionsOf(web.url())).toEqual([a, b, c, d]);
  });

  it('deploys a forced push of a commit that does not descend from the applied one', async () => {
    const { web, a, b, record } = await replayOlder({ forced: true });
    expect(record.state).toBe('succeeded');
    expect(record.log.join('\n')).toContain('forced push');
    expect(reconciler.revisionsOf(web.url())).toEqual([a, b, a]);
  });
});
