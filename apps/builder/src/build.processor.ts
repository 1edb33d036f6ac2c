import type { BuildsQueueConsumer } from '@seed/builds-queue';
import { BUILD_JOB_OPTIONS, buildJobSchema } from '@seed/contracts';
import type { Logger } from '@seed/service-kit';
import { DelayedError, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { BuildFailed, type BuildService } from './build.service';

export interface BuildWorkerOptions {
  concurrency: number;
  lockMs: number;
  /** How long a build waiting for its flake's lock stays delayed before trying again. */
  flakeBusyDelayMs: number;
}

/**
 * BullMQ glue: validates the payload, holds the flake's lock so builds of one flake run
 * one at a time, and turns the service's outcome into BullMQ's terms (done, retry later,
 * fail at once). A worker killed outright leaves its job locked until the lock expires;
 * BullMQ then hands it to another worker, which is safe because applying a generation
 * twice changes nothing.
 */
export class BuildProcessor {
  constructor(
    private readonly service: BuildService,
    private readonly records: BuildsQueueConsumer,
    private readonly logger: Logger,
    private readonly options: BuildWorkerOptions,
    /** Fires when the worker gives up waiting for running builds at shutdown. */
    private readonly shutdown: AbortSignal,
  ) {}

  /** A job BullMQ failed for stalling too often: its record says why. */
  async abandon(job: Job): Promise<void> {
    const parsed = buildJobSchema.safeParse(job.data);
    if (parsed.success) await this.service.abandon(job.id!, parsed.data, MAX_STALLS + 1);
  }

  async process(
    job: Job,
    token: string | undefined,
  ): Promise<{ state: string; generation?: string }> {
    const parsed = buildJobSchema.safeParse(job.data);
    if (!parsed.success) {
      throw new UnrecoverableError(
        `invalid build payload: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    const build = parsed.data;
    const jobId = job.id!;
    await this.records.taken(build.flake, jobId);
    if (!(await this.records.lockFlake(build.flake, jobId, this.options.lockMs))) {
      // Another build of this flake runs: wait without spending an attempt.
      await job.moveToDelayed(Date.now() + this.options.flakeBusyDelayMs, token);
      throw new DelayedError();
    }
    const renew = setInterval(() => {
      this.records
        .renewFlakeLock(build.flake, jobId, this.options.lockMs)
        .catch((error: unknown) => {
          this.logger.warn({ err: error, jobId }, 'could not renew the flake lock');
        });
    }, this.options.lockMs / 3);
    try {
      const attempts = job.opts.attempts ?? BUILD_JOB_OPTIONS.attempts;
      const record = await this.service.run(build, {
        jobId,
        attempt: job.attemptsMade + 1,
        finalAttempt: job.attemptsMade + 1 >= attempts,
        signal: this.shutdown,
      });
      return { state: record.state, generation: record.generation };
    } catch (error) {
      if (error instanceof BuildFailed && !error.retryable)
        throw new UnrecoverableError(error.message);
      if (this.shutdown.aborted) {
        // Handed back at shutdown: another worker runs it again, without spending an
        // attempt (a failure would, and end it `failed` on its last one).
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      throw error;
    } finally {
      clearInterval(renew);
      await this.records.unlockFlake(build.flake, jobId).catch(() => undefined);
    }
  }
}

/**
 * How many times a build may lose its worker (a crashed or killed process, a lost node)
 * and go back to the queue: as many as it has attempts. BullMQ's default, 1, fails a job
 * on its second stall, so one tenant whose build crashed the process twice failed every
 * other build that happened to run beside it.
 */
export const MAX_STALLS = BUILD_JOB_OPTIONS.attempts;

/** BullMQ's reason for a job that stalled more than MAX_STALLS times. */
const STALLED_OUT = 'job stalled more than allowable limit';

/** Starts a BullMQ worker on the builds queue running the processor. */
export function startBuildWorker(
  queueName: string,
  /** As the builder's Redis user, with `maxRetriesPerRequest: null` (BullMQ's need). */
  connection: ConnectionOptions,
  processor: BuildProcessor,
  options: BuildWorkerOptions,
  logger: Logger,
): Worker {
  const worker = new Worker(queueName, (job, token) => processor.process(job, token), {
    connection,
    concurrency: options.concurrency,
    lockDuration: options.lockMs,
    stalledInterval: options.lockMs,
    maxStalledCount: MAX_STALLS,
    autorun: true,
  });
  worker.on('failed', (job, error) => {
    logger.warn({ jobId: job?.id, err: error }, 'build job failed');
    if (job !== undefined && error.message === STALLED_OUT) {
      processor.abandon(job).catch((failure: unknown) => {
        logger.error({ jobId: job.id, err: failure }, 'could not record the abandoned build');
      });
    }
  });
  worker.on('error', (error) => logger.error({ err: error }, 'worker error'));
  return worker;
}
