import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BuildsQueueProducer, REDIS_USERS } from '@seed/builds-queue';
import { BUILDS_QUEUE, buildJobId, type BuildJob } from '@seed/contracts';
import { createLogger } from '@seed/service-kit';
import { startRedis, type LocalRedis } from '@seed/testing';
import { Queue } from 'bullmq';
import { parseFlakeRegistry } from '../src/flake-registry';
import { WebhookMetrics } from '../src/metrics';
import { QueueUnavailable, WebhookService } from '../src/webhook.service';
import { githubPush, hmacHex } from './forge-payloads';

const FLAKE = 'github:Codertocat/Hello-World';

/** The real producer, except that storing a build fails while `failing` is set. */
class FlakyAdds extends BuildsQueueProducer {
  failing = false;

  protected override async add(build: BuildJob): Promise<unknown> {
    if (this.failing) throw new Error('connection lost');
    return super.add(build);
  }
}

describe('a failure between recording a delivery and storing its build', () => {
  let redis: LocalRedis;
  let builds: FlakyAdds;
  let queue: Queue;

  beforeAll(async () => {
    redis = await startRedis();
    builds = new FlakyAdds({
      redis: { url: redis.url, ...redis.user(REDIS_USERS.webhook) },
      commandTimeoutMs: 1_000,
      dedupeTtlSeconds: 3600,
      onConnectionError: () => undefined,
    });
    queue = new Queue(BUILDS_QUEUE, {
      connection: { host: redis.host, port: redis.port, ...redis.admin },
    });
    expect(await builds.connected(5_000)).toBe(true);
  });

  afterAll(async () => {
    await builds.close();
    await queue.close();
    await redis.dispose();
  });

  it('answers 503, and the resend stores the build exactly once', async () => {
    const registry = parseFlakeRegistry(
      `[{ flake: "${FLAKE}", repository: "Codertocat/Hello-World", secret: "s" }]`,
      'test',
      {},
    );
    const service = new WebhookService(
      () => registry,
      builds,
      new WebhookMetrics(builds),
      createLogger('test', 'silent'),
    );
    const commit = 'd'.repeat(40);
    const body = Buffer.from(JSON.stringify(githubPush(commit)));
    const delivery = {
      headers: {
        'x-github-event': 'push',
        'x-github-delivery': 'flaky-1',
        'x-hub-signature-256': `sha256=${hmacHex('s', body)}`,
      },
      contentType: 'application/json',
      body,
      route: 'webhook' as const,
    };

    builds.failing = true;
    await expect(service.receive(delivery)).rejects.toBeInstanceOf(QueueUnavailable);
    expect((await queue.getJobCounts('waiting')).waiting).toBe(0);

    builds.failing = false;
    const resent = await service.receive(delivery);
    expect(resent).toEqual({
      outcome: 'duplicate',
      body: {
        status: 'duplicate',
        deliveryId: 'flaky-1',
        jobs: [{ jobId: buildJobId(FLAKE, commit) }],
      },
    });
    const waiting = await queue.getJobs(['waiting']);
    expect(waiting.map((job) => job.id)).toEqual([buildJobId(FLAKE, commit)]);

    await service.receive(delivery);
    expect((await queue.getJobCounts('waiting')).waiting).toBe(1);
  });
});
