import { randomBytes } from 'node:crypto';
import {
  BUILD_JOB_NAME,
  buildJobId,
  buildJobOptions,
  latestBuildKey,
  type BuildJob,
} from '@seed/contracts';
import type { JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * Queues a build of `flake` at `commit` the way the webhook does: the flake's latest
 * pointer first, then the job with the catalog's id and options. Returns the job id.
 */
export async function queueBuild(
  connections: { redis: Redis; queue: Queue },
  flake: string,
  commit: string,
  options: JobsOptions = {},
): Promise<string> {
  const job: BuildJob = {
    flake,
    commit,
    ref: 'refs/heads/main',
    forge: 'github',
    deliveryId: `test-${randomBytes(4).toString('hex')}`,
    receivedAt: new Date().toISOString(),
  };
  const jobId = buildJobId(flake, commit);
  await connections.redis.set(latestBuildKey(flake), jobId);
  await connections.queue.add(BUILD_JOB_NAME, job, { ...buildJobOptions(job), ...options });
  return jobId;
}
