// Producer and consumer against a real Redis: what the webhook writes is what the builder
// reads.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildJobId, queuedBuildRecord, type BuildJob } from '@seed/contracts';
import { startRedis, type LocalRedis } from '@seed/local-parts';
import { BuildsQueueConsumer, BuildsQueueProducer, REDIS_USERS, redisAclUsers } from '../src';

let redis: LocalRedis;
let producer: BuildsQueueProducer;
let consumer: BuildsQueueConsumer;
let pushes = 0;

beforeAll(async () => {
  redis = await startRedis(redisAclUsers());
  producer = new BuildsQueueProducer({
    redis: { url: redis.url, ...redis.user(REDIS_USERS.webhook) },
    commandTimeoutMs: 2_000,
    dedupeTtlSeconds: 3600,
    onConnectionError: () => undefined,
  });
  consumer = new BuildsQueueConsumer(
    { url: redis.url, ...redis.user(REDIS_USERS.builder) },
    () => undefined,
  );
  expect(await producer.connected(5_000)).toBe(true);
});

afterAll(async () => {
  await producer?.close();
  await consumer?.close();
  await redis?.dispose();
});

function push(flake: string, commit: string, deliveryId = `delivery-${++pushes}`): BuildJob {
  return {
    flake,
    commit,
    ref: 'refs/heads/main',
    forge: 'github',
    deliveryId,
    receivedAt: new Date().toISOString(),
  };
}

describe('the builds queue', () => {
  it('queues a delivery once and makes each build its flake latest', async () => {
    const first = push('github:acme/app', 'a'.repeat(40));
    const jobId = buildJobId(first.flake, first.commit);
    expect(await producer.queue('github', first.deliveryId, [first])).toEqual({
      duplicate: false,
      builds: [{ jobId, created: true, supersedes: undefined }],
      dropped: [],
    });
    expect(await consumer.latest(first.flake)).toBe(jobId);
    expect(await consumer.get(jobId)).toMatchObject({ id: jobId, state: 'queued' });
    expect(await producer.depth()).toMatchObject({ waiting: 1 });

    expect(await producer.queue('github', first.deliveryId, [first])).toEqual({
      duplicate: true,
      jobIds: [jobId],
    });
    // Another delivery of the same commit (a second hook) queues nothing new.
    const again = push(first.flake, first.commit);
    expect(await producer.queue('github', again.deliveryId, [again])).toMatchObject({
      builds: [{ jobId, created: false }],
    });

    const newer = push(first.flake, 'b'.repeat(40));
    expect(await producer.queue('github', newer.deliveryId, [newer])).toMatchObject({
      builds: [{ created: true, supersedes: jobId }],
    });
    expect(await consumer.latest(first.flake)).toBe(buildJobId(newer.flake, newer.commit));
  });

  it("tells how long the oldest waiting build has waited, as the webhook's user", async () => {
    // The first test left builds waiting (no worker runs here); the oldest is its first.
    const now = Date.now();
    const waited = await producer.oldestWaitingSeconds(now + 60_000);
    expect(waited).toBeGreaterThanOrEqual(60);
    expect(waited).toBeLessThan(120);
    expect(await producer.oldestWaitingSeconds(now + 120_000)).toBeCloseTo(waited + 60, 3);
  });

  it('lets only the owner of a flake lock renew or release it', async () => {
    const flake = 'github:acme/locked';
    expect(await consumer.lockFlake(flake, 'job-1', 10_000)).toBe(true);
    expect(await consumer.lockFlake(flake, 'job-1', 10_000)).toBe(true);
    expect(await consumer.lockFlake(flake, 'job-2', 10_000)).toBe(false);
    expect(await consumer.renewFlakeLock(flake, 'job-2', 10_000)).toBe(false);
    await consumer.unlockFlake(flake, 'job-2');
    expect(await consumer.lockFlake(flake, 'job-2', 10_000)).toBe(false);
    expect(await consumer.renewFlakeLock(flake, 'job-1', 10_000)).toBe(true);
    await consumer.unlockFlake(flake, 'job-1');
    expect(await consumer.lockFlake(flake, 'job-2', 10_000)).toBe(true);
  });

  it('lists saved records per flake and across flakes, newest first', async () => {
    const at = (minute: number) => new Date(Date.UTC(2026, 11, 2, 10, minute)).toISOString();
    const records = [
      { ...push('github:acme/one', 'c'.repeat(40)), receivedAt: at(1) },
      { ...push('github:acme/two', 'd'.repeat(40)), receivedAt: at(2) },
      { ...push('github:acme/one', 'e'.repeat(40)), receivedAt: at(3) },
    ].map((job) => queuedBuildRecord(buildJobId(job.flake, job.commit), job, new Date()));
    for (const record of records) await consumer.save(record);

    const ids = (list: { id: string }[]) => list.map((record) => record.id);
    expect(ids(await consumer.list('github:acme/one', 10))).toEqual([
      records[2]!.id,
      records[0]!.id,
    ]);
    expect(ids(await consumer.list(undefined, 2))).toEqual([records[2]!.id, records[1]!.id]);
    expect(await consumer.get(records[1]!.id)).toEqual(records[1]);
  });
});
