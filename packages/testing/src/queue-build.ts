import { randomBytes } from 'node:crypto';
import type { BuildsQueueProducer } from '@seed/builds-queue';
import { buildJobId, type BuildJob, type FlakeQuota } from '@seed/contracts';

/**
 * Queues a build of `flake` at `commit` as a GitHub push to the webhook would: through
 * the builds queue's producer, as a delivery of its own. Returns the job id.
 */
export async function queueBuild(
  producer: BuildsQueueProducer,
  flake: string,
  commit: string,
  quota?: FlakeQuota,
): Promise<string> {
  if (!(await producer.connected(10_000))) throw new Error('Redis is not reachable');
  const job: BuildJob = {
    flake,
    commit,
    ref: 'refs/heads/main',
    forge: 'github',
    deliveryId: `test-${randomBytes(4).toString('hex')}`,
    receivedAt: new Date().toISOString(),
    ...(quota && { quota }),
  };
  await producer.queue(job.forge, job.deliveryId, [job]);
  return buildJobId(flake, commit);
}
