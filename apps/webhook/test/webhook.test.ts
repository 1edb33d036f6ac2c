import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { BuildsQueueConsumer, REDIS_USERS } from '@seed/builds-queue';
import {
  BUILDS_QUEUE,
  DEFAULT_FLAKE_QUOTA,
  buildJobId,
  flakeHookId,
  type BuildJob,
} from '@seed/contracts';
import { githubPushHeaders, startRedis, type LocalRedis } from '@seed/testing';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadWebhookConfig } from '../src/config';
import { createWebhookApp } from '../src/webhook.app';
import {
  giteaPush,
  githubBranchDeletion,
  githubIssue,
  githubPing,
  githubPush,
  githubTagPush,
  gitlabPush,
  hmacHex,
} from './forge-payloads';

const HELLO = 'github:Codertocat/Hello-World';
const REGISTRY = `
flakes:
  - flake: ${HELLO}
    repository: github.com/Codertocat/Hello-World
    secret: hello-secret
    quota: { cpu: '4', pods: 6 }
  - flake: github:octo/other
    repository: octo/other
    secret: other-secret
  - flake: git+https://gitea.example/acme/app.git
    repository: https://gitea.example/acme/app
    secret: gitea-secret
    maxQueuedBuilds: 2
  - flake: git+https://forgejo.example/acme/app.git
    repository: forgejo.example/acme/app
    secret: forgejo-secret
    maxQueuedBuilds: 1
  - flake: git+https://gitlab.example/group/app.git
    repository: group/app
    secret: gitlab-token
`;

/** GitHub's example ping names a repository no flake follows: one that HELLO does. */
const helloPing = () => ({ ...githubPing(), repository: githubPush('0'.repeat(40)).repository });

let counter = 0;
const commit = () => (++counter).toString(16).padStart(40, 'c');
const deliveryId = () => `delivery-${++counter}`;

interface Sent {
  status: number;
  body: Record<string, unknown>;
}

let redis: LocalRedis;
let app: NestFastifyApplication;
let url: string;
let queue: Queue<BuildJob>;
let client: Redis;
/** Reads each flake's latest build as the builder does. */
let builder: BuildsQueueConsumer;

async function post(
  path: string,
  headers: Record<string, string>,
  body: string | Buffer,
): Promise<Sent> {
  const response = await fetch(`${url}${path}`, { method: 'POST', headers, body });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function github(
  payload: unknown,
  options: { event?: string; id?: string; secret?: string; path?: string } = {},
) {
  const body = JSON.stringify(payload);
  return post(
    options.path ?? '/webhook',
    {
      ...githubPushHeaders(body, options.secret ?? 'hello-secret', options.id ?? deliveryId()),
      'x-github-event': options.event ?? 'push',
    },
    body,
  );
}

async function jobs(): Promise<BuildJob[]> {
  return (await queue.getJobs(['waiting', 'delayed', 'prioritized', 'active'])).map(
    (job) => job.data,
  );
}

beforeAll(async () => {
  redis = await startRedis();
  const config = loadWebhookConfig({
    SEED_FLAKES: REGISTRY,
    SEED_POLL_INTERVAL_SECONDS: '0', // its flakes' remotes are off this machine
    ...redis.serviceEnv(REDIS_USERS.webhook),
    SEED_LOG_LEVEL: 'silent',
    SEED_REDIS_COMMAND_TIMEOUT_MS: '500',
  });
  app = await createWebhookApp(config);
  await app.listen(0, '127.0.0.1');
  url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  queue = new Queue<BuildJob>(BUILDS_QUEUE, {
    connection: { host: redis.host, port: redis.port, ...redis.admin },
  });
  client = new Redis(redis.port, redis.host, redis.admin);
  builder = new BuildsQueueConsumer(
    { url: redis.url, ...redis.user(REDIS_USERS.builder) },
    () => undefined,
  );
});

afterAll(async () => {
  await app?.close();
  await queue?.close();
  client?.disconnect();
  await builder?.close();
  await redis?.dispose();
});

beforeEach(async () => {
  await client.flushall();
});

describe('GitHub', () => {
  it('queues a build of the flake at the pushed commit, with its caps, once the job is stored', async () => {
    const after = commit();
    const sent = await github(githubPush(after), { id: 'gh-1' });
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({
      status: 'queued',
      deliveryId: 'gh-1',
      jobs: [{ flake: HELLO, commit: after, jobId: buildJobId(HELLO, after), created: true }],
    });
    const [job] = await jobs();
    expect(job).toEqual({
      flake: HELLO,
      commit: after,
      ref: 'refs/heads/master',
      forge: 'github',
      deliveryId: 'gh-1',
      receivedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      quota: { ...DEFAULT_FLAKE_QUOTA, cpu: '4', pods: 6 },
    });
  });

  it('marks the build of a forced push forced, so the builder may deploy it backwards', async () => {
    const after = commit();
    const sent = await github({ ...githubPush(after), forced: true }, { id: 'gh-forced' });
    expect(sent.status).toBe(202);
    const [job] = await jobs();
    expect(job).toMatchObject({ commit: after, deliveryId: 'gh-forced', forced: true });
  });

  it('accepts the form-encoded body, signed over its raw bytes', async () => {
    const after = commit();
    const body = new URLSearchParams({ payload: JSON.stringify(githubPush(after)) }).toString();
    const sent = await post(
      '/webhook',
      {
        'content-type': 'application/x-www-form-urlencoded',
        'x-github-event': 'push',
        'x-github-delivery': deliveryId(),
        'x-hub-signature-256': `sha256=${hmacHex('hello-secret', body)}`,
      },
      body,
    );
    expect(sent.status).toBe(202);
    expect((await jobs()).map((job) => job.commit)).toEqual([after]);
  });

  it('keeps POST /refresh for GitHub deliveries', async () => {
    const sent = await github(githubPush(commit()), { path: '/refresh' });
    expect(sent.status).toBe(202);
    const gitlab = await post(
      '/refresh',
      { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook' },
      '{}',
    );
    expect(gitlab).toEqual({
      status: 400,
      body: { error: expect.stringContaining('POST /refresh takes GitHub deliveries') },
    });
  });

  it('answers a ping with 200', async () => {
    const ping = await github(helloPing(), { event: 'ping' });
    expect(ping).toEqual({ status: 200, body: { status: 'pong', deliveryId: expect.any(String) } });
  });

  it.each([
    ['a tag push', () => githubTagPush(), 'push', 'is not a branch push'],
    ['a branch deletion', () => githubBranchDeletion(), 'push', 'push deleted refs/heads/master'],
    [
      'a push to another branch',
      () => githubPush(commit(), 'refs/heads/feature'),
      'push',
      'no flake deploys branch "feature"',
    ],
    ['another event', () => githubIssue(), 'issues', 'event "issues" does not deploy'],
  ])('answers %s with 202 and queues nothing', async (_what, payload, event, reason) => {
    const sent = await github(payload(), { event });
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({ status: 'ignored', jobs: [] });
    expect(String(sent.body.reason)).toContain(reason);
    expect(await jobs()).toEqual([]);
  });

  it('queues nothing new for a redelivery', async () => {
    const after = commit();
    expect((await github(githubPush(after), { id: 'same' })).status).toBe(202);
    const again = await github(githubPush(after), { id: 'same' });
    expect(again).toEqual({
      status: 200,
      body: {
        status: 'duplicate',
        deliveryId: 'same',
        jobs: [{ jobId: buildJobId(HELLO, after) }],
      },
    });
    expect(await jobs()).toHaveLength(1);
  });

  it('queues one job for two hooks on the same commit', async () => {
    const after = commit();
    await github(githubPush(after));
    const second = await github(githubPush(after));
    expect(second.status).toBe(202);
    expect(second.body.jobs).toEqual([
      expect.objectContaining({ jobId: buildJobId(HELLO, after), created: false }),
    ]);
    expect(await jobs()).toHaveLength(1);
  });

  it('lets a newer push supersede an older build still waiting', async () => {
    const older = commit();
    const newer = commit();
    await github(githubPush(older));
    const sent = await github(githubPush(newer));
    expect(sent.body.jobs).toEqual([
      expect.objectContaining({ commit: newer, supersedes: buildJobId(HELLO, older) }),
    ]);
    // The older build stays queued, no longer its flake's latest: the builder ends it as
    // superseded when it takes it (apps/builder's superseding tests), so it shows in the
    // flake's history instead of vanishing.
    expect(await builder.latest(HELLO)).toBe(buildJobId(HELLO, newer));
    expect((await jobs()).map((job) => job.commit).sort()).toEqual([older, newer].sort());
  });

  it('refuses a repository no flake follows with the 401 of a wrong signature', async () => {
    const payload = githubPush(commit());
    const other = {
      ...payload,
      repository: {
        ...(payload.repository as object),
        full_name: 'nobody/nothing',
        clone_url: 'https://github.com/nobody/nothing.git',
        html_url: 'https://github.com/nobody/nothing',
        ssh_url: 'git@github.com:nobody/nothing.git',
        git_url: 'git://github.com/nobody/nothing.git',
        url: 'https://github.com/nobody/nothing',
      },
    };
    const unknown = await github(other);
    const wrong = await github(githubPush(commit()), { secret: 'other-secret' });
    expect(unknown).toEqual({ status: 401, body: { error: expect.any(String) } });
    expect(unknown).toEqual(wrong);
    expect(await jobs()).toEqual([]);
  });

  it('refuses a delivery signed with the secret of another flake', async () => {
    const sent = await github(githubPush(commit()), { secret: 'other-secret' });
    expect(sent).toEqual({
      status: 401,
      body: { error: expect.stringContaining('matches the secret of no flake') },
    });
    expect(await jobs()).toEqual([]);
  });

  it('refuses unsigned, malformed and unsupported deliveries with JSON errors', async () => {
    const unsigned = await post(
      '/webhook',
      { 'content-type': 'application/json', 'x-github-event': 'push' },
      '{}',
    );
    expect(unsigned).toEqual({
      status: 401,
      body: { error: 'the delivery is not signed (X-Hub-Signature-256)' },
    });

    const garbage = '{"ref": "refs/heads/master",';
    const malformed = await post(
      '/webhook',
      {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-hub-signature-256': `sha256=${hmacHex('hello-secret', garbage)}`,
      },
      garbage,
    );
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toContain('body is not valid JSON');

    const text = await post(
      '/webhook',
      {
        'content-type': 'text/plain',
        'x-github-event': 'push',
        'x-hub-signature-256': `sha256=${'0'.repeat(64)}`,
      },
      'hi',
    );
    expect(text).toEqual({
      status: 415,
      body: { error: expect.stringContaining('unsupported content type "text/plain"') },
    });

    const anonymous = await post('/webhook', { 'content-type': 'application/json' }, '{}');
    expect(anonymous.status).toBe(400);
    expect(anonymous.body.error).toContain('not a forge delivery');

    const unknownRoute = await post('/nowhere', { 'content-type': 'application/json' }, '{}');
    expect(unknownRoute.status).toBe(404);
    expect(typeof unknownRoute.body.error).toBe('string');
  });

  it('refuses a body over 1 MiB with 413', async () => {
    const huge = Buffer.alloc(1024 * 1024 + 1, 0x20);
    const sent = await post(
      '/webhook',
      { 'content-type': 'application/json', 'x-github-event': 'push' },
      huge,
    );
    expect(sent).toEqual({ status: 413, body: { error: 'Request body is too large' } });
  });
});

describe("a flake's own hook URL", () => {
  const hook = `/hooks/${flakeHookId(HELLO, 'hello-secret')}`;

  it("queues a push signed with that flake's secret", async () => {
    const after = commit();
    const sent = await github(githubPush(after), { path: hook });
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({ status: 'queued', jobs: [{ flake: HELLO, commit: after }] });
    expect((await github(helloPing(), { path: hook, event: 'ping' })).body).toMatchObject({
      status: 'pong',
    });
  });

  it('refuses an unknown id, another secret and another repository', async () => {
    const unknown = await github(githubPush(commit()), { path: `/hooks/${'0'.repeat(32)}` });
    expect(unknown).toEqual({ status: 404, body: { error: 'no flake has this hook id' } });
    const wrong = await github(githubPush(commit()), { path: hook, secret: 'other-secret' });
    expect(wrong.status).toBe(401);
    const payload = githubPush(commit());
    const elsewhere = await github(
      { ...payload, repository: { full_name: 'octo/other' } },
      { path: hook },
    );
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body.error).toContain('this hook deploys github:Codertocat/Hello-World');
    expect(await jobs()).toEqual([]);
  });
});

/** A signed Gitea or Forgejo push of `commit` to its acme/app. */
function giteaLike(forge: 'gitea' | 'forgejo', after: string): Promise<Sent> {
  const body = JSON.stringify(giteaPush(`${forge}.example`, 'acme/app', after));
  return post(
    '/webhook',
    {
      'content-type': 'application/json',
      'x-gitea-event': 'push',
      [`x-${forge}-event`]: 'push',
      [`x-${forge}-delivery`]: deliveryId(),
      [`x-${forge}-signature`]: hmacHex(`${forge}-secret`, body),
    },
    body,
  );
}

describe("a flake's cap of queued builds (maxQueuedBuilds)", () => {
  const gitea = 'git+https://gitea.example/acme/app.git';

  it('drops the oldest superseded build waiting once a flake is at its cap', async () => {
    const pushed = [commit(), commit(), commit(), commit()];
    for (const after of pushed.slice(0, 2))
      expect((await giteaLike('gitea', after)).status).toBe(202);
    const third = await giteaLike('gitea', pushed[2]!);
    expect(third.status).toBe(202);
    expect(third.body.dropped).toEqual([buildJobId(gitea, pushed[0]!)]);
    const fourth = await giteaLike('gitea', pushed[3]!);
    expect(fourth.body.dropped).toEqual([buildJobId(gitea, pushed[1]!)]);
    expect((await jobs()).map((job) => job.commit).sort()).toEqual(pushed.slice(2).sort());
    expect(await builder.latest(gitea)).toBe(buildJobId(gitea, pushed[3]!));
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^seed_webhook_builds_dropped_total 2$/m);
  });

  it('answers 429 naming the limit when nothing waiting can be dropped', async () => {
    const forgejo = 'git+https://forgejo.example/acme/app.git';
    const [first, second] = [commit(), commit()];
    expect((await giteaLike('forgejo', first)).status).toBe(202);
    // Its only waiting build is its latest: the webhook never drops that one.
    const refused = await giteaLike('forgejo', second);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatch(/1 build\(s\) waiting.*maxQueuedBuilds: 1/);
    expect(await builder.latest(forgejo)).toBe(buildJobId(forgejo, first));
    expect((await jobs()).map((job) => job.commit)).toEqual([first]);

    // Once a worker takes it, the next push is queued.
    await builder.taken(forgejo, buildJobId(forgejo, first));
    expect((await giteaLike('forgejo', second)).status).toBe(202);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(
      /seed_webhook_deliveries_total\{forge="forgejo",event="push",outcome="over-limit"\} 1/,
    );
  });
});

describe('Gitea, Forgejo and GitLab', () => {
  it('queues a Gitea push signed with X-Gitea-Signature', async () => {
    const after = commit();
    const body = JSON.stringify(giteaPush('gitea.example', 'acme/app', after));
    const sent = await post(
      '/webhook',
      {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-gitea-event': 'push',
        'x-gitea-delivery': deliveryId(),
        'x-gitea-signature': hmacHex('gitea-secret', body),
      },
      body,
    );
    expect(sent.status).toBe(202);
    expect(await jobs()).toEqual([
      expect.objectContaining({
        flake: 'git+https://gitea.example/acme/app.git',
        forge: 'gitea',
        commit: after,
      }),
    ]);
  });

  it('queues a Forgejo push signed with X-Forgejo-Signature', async () => {
    const body = JSON.stringify(giteaPush('forgejo.example', 'acme/app', commit()));
    const sent = await post(
      '/webhook',
      {
        'content-type': 'application/json',
        'x-forgejo-event': 'push',
        'x-gitea-event': 'push',
        'x-forgejo-delivery': deliveryId(),
        'x-forgejo-signature': hmacHex('forgejo-secret', body),
      },
      body,
    );
    expect(sent.status).toBe(202);
    expect(await jobs()).toEqual([
      expect.objectContaining({
        flake: 'git+https://forgejo.example/acme/app.git',
        forge: 'forgejo',
      }),
    ]);
  });

  it('queues a GitLab push with the right token, refuses a wrong one, ignores tag pushes', async () => {
    const send = (payload: unknown, token: string, event = 'Push Hook') =>
      post(
        '/webhook',
        {
          'content-type': 'application/json',
          'x-gitlab-event': event,
          'x-gitlab-token': token,
          'idempotency-key': deliveryId(),
        },
        JSON.stringify(payload),
      );
    const after = commit();
    expect(
      (await send(gitlabPush('gitlab.example', 'group/app', after), 'gitlab-token')).status,
    ).toBe(202);
    expect((await send(gitlabPush('gitlab.example', 'group/app', commit()), 'wrong')).status).toBe(
      401,
    );
    const tag = await send(
      gitlabPush('gitlab.example', 'group/app', commit(), { tag: true }),
      'gitlab-token',
      'Tag Push Hook',
    );
    expect(tag.status).toBe(202);
    expect((await jobs()).map((job) => job.commit)).toEqual([after]);
  });
});

describe('operations', () => {
  it('serves health, readiness and metrics', async () => {
    await github(githubPush(commit()));
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { redis: 'ok', flakes: 'ok' } });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(
      /seed_webhook_deliveries_total\{forge="github",event="push",outcome="queued"\} \d+/,
    );
    expect(metrics).toMatch(/seed_webhook_enqueue_duration_seconds_bucket\{le="0.005"\} \d+/);
    expect(metrics).toMatch(/seed_webhook_queue_jobs\{state="waiting"\} 1/);
  });

  it('answers 503 while Redis is down, then queues the resend exactly once', async () => {
    const kept = commit();
    await github(githubPush(kept));
    await redis.stop();
    try {
      const after = commit();
      const down = await github(githubPush(after), { id: 'during-outage' });
      expect(down.status).toBe(503);
      expect(down.body.error).toContain('the build queue is unavailable');
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { error: string }).error).toMatch(/^redis: /);

      await redis.start();
      await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200);
      const resent = await github(githubPush(after), { id: 'during-outage' });
      expect(resent.status).toBe(202);
      expect((await github(githubPush(after), { id: 'during-outage' })).body.status).toBe(
        'duplicate',
      );
      // Each push is queued once, nothing lost or doubled, and the newer one is the latest.
      expect((await jobs()).map((job) => job.commit).sort()).toEqual([kept, after].sort());
      expect(await builder.latest(HELLO)).toBe(buildJobId(HELLO, after));
    } finally {
      if (!(await redisAnswers())) await redis.start();
    }
  });
});

async function redisAnswers(): Promise<boolean> {
  try {
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  }
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
