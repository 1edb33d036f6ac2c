import { randomBytes } from 'node:crypto';
import { BuildsQueueProducer, REDIS_USERS } from '@seed/builds-queue';
import { BUILDS_QUEUE, buildRecordSchema, type BuildRecord } from '@seed/contracts';
import {
  demoFlakeFiles,
  FlakeRepo,
  queueBuild,
  type DemoSeed,
  type LocalRedis,
} from '@seed/testing';
import { Queue } from 'bullmq';

/**
 * Queues builds through the webhook's producer (as the webhook's Redis user), retrying
 * quickly; `queue` shows their jobs (as the fixture's admin).
 */
export class Pushes {
  readonly queue: Queue;
  private readonly producer: BuildsQueueProducer;

  constructor(redis: LocalRedis) {
    this.producer = new BuildsQueueProducer({
      redis: { url: redis.url, ...redis.user(REDIS_USERS.webhook) },
      commandTimeoutMs: 5_000,
      dedupeTtlSeconds: 3600,
      onConnectionError: () => undefined,
      jobOptions: { backoff: { type: 'fixed', delay: 200 } },
    });
    this.queue = new Queue(BUILDS_QUEUE, {
      connection: { host: redis.host, port: redis.port, ...redis.admin },
    });
  }

  push(repo: FlakeRepo, commit: string): Promise<string> {
    return queueBuild(this.producer, repo.url(), commit);
  }

  async close(): Promise<void> {
    await this.queue.close();
    await this.producer.close();
  }
}

/** A flake repository whose images are unique to this test run (no store path is cached). */
export async function flake(seeds: Record<string, DemoSeed>): Promise<FlakeRepo> {
  return FlakeRepo.create(await demoFlakeFiles(unique(seeds)));
}

export async function commit(repo: FlakeRepo, seeds: Record<string, DemoSeed>): Promise<string> {
  return repo.commit(await demoFlakeFiles(unique(seeds)));
}

const RUN = randomBytes(6).toString('hex');

function unique(seeds: Record<string, DemoSeed>): Record<string, DemoSeed> {
  return Object.fromEntries(
    Object.entries(seeds).map(([name, seed]) => [
      name,
      { ...seed, build: `echo ${RUN}; ${seed.build ?? `echo ${name} > $out`}` },
    ]),
  );
}

/** Polls the builder's HTTP API until the build reaches a final state. */
export async function finished(
  builderUrl: string,
  jobId: string,
  timeoutMs = 60_000,
): Promise<BuildRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${builderUrl}/builds/${jobId}`);
    if (response.ok) {
      const record = buildRecordSchema.parse(await response.json());
      if (['succeeded', 'failed', 'superseded'].includes(record.state)) return record;
    }
    if (Date.now() > deadline)
      throw new Error(`build ${jobId} did not finish within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
