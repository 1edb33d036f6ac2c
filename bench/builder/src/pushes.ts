import { randomBytes } from 'node:crypto';
import { BuildsQueueProducer } from '@seed/builds-queue';
import { BUILDS_QUEUE, buildJobId } from '@seed/contracts';
import { demoFlakeFiles, FlakeRepo, queueBuild, type DemoSeed } from '@seed/testing';
import { QueueEvents } from 'bullmq';

/** A pushed flake: a throwaway git repository and the commit to build. */
export interface Fixture {
  repo: FlakeRepo;
  commit: string;
  seeds: number;
}

const RUN = randomBytes(6).toString('hex');
const SEEDS: Record<string, DemoSeed> = {
  web: { seed: { expose: { http: 8080 } } },
  api: { seed: { expose: { grpc: { port: 9000, protocol: 'grpc' } } } },
  worker: { seed: { size: 'm', storage: { data: '1Gi' } } },
};
let fixtures = 0;

/**
 * A flake of `seeds` seeds whose images no other flake, and no earlier run, shares: the
 * build script carries the run's nonce and the flake's number, so nothing is cached.
 */
export async function freshFlake(seeds: number): Promise<Fixture> {
  fixtures += 1;
  const tag = `${RUN}-${fixtures}`;
  const chosen = Object.entries(SEEDS)
    .slice(0, seeds)
    .map(([name, seed]): [string, DemoSeed] => [
      name,
      { ...seed, build: `echo ${tag}; echo ${name} > $out` },
    ]);
  const repo = await FlakeRepo.create();
  const commit = await repo.commit(await demoFlakeFiles(Object.fromEntries(chosen)));
  return { repo, commit, seeds: chosen.length };
}

interface Waiter {
  resolve: (at: number) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Queues builds through the webhook's producer and tells when each one finishes, from
 * BullMQ's event stream rather than by polling.
 */
export class Pushes {
  private readonly producer: BuildsQueueProducer;
  private readonly events: QueueEvents;
  private readonly waiting = new Map<string, Waiter>();

  constructor(redisUrl: string) {
    this.producer = new BuildsQueueProducer({
      url: redisUrl,
      commandTimeoutMs: 5_000,
      dedupeTtlSeconds: 3600,
      onConnectionError: () => undefined,
    });
    this.events = new QueueEvents(BUILDS_QUEUE, {
      connection: { url: redisUrl, maxRetriesPerRequest: null },
    });
    this.events.on('completed', ({ jobId, returnvalue }) => {
      const at = performance.now();
      const state = stateOf(returnvalue);
      if (state === 'succeeded') this.settle(jobId, at);
      else this.settle(jobId, new Error(`build ${jobId} ended ${state}, not succeeded`));
    });
    this.events.on('failed', ({ jobId, failedReason }) =>
      this.settle(jobId, new Error(`build ${jobId} failed: ${failedReason}`)),
    );
  }

  /** Resolves once the event stream is read: events before this are not seen. */
  async ready(): Promise<void> {
    await this.events.waitUntilReady();
  }

  /** The job id a push of the fixture gets. */
  jobId(fixture: Fixture): string {
    return buildJobId(fixture.repo.url(), fixture.commit);
  }

  /**
   * Resolves with `performance.now()` when the fixture's build completes successfully.
   * Call it before pushing, so the event cannot slip by.
   */
  finished(fixture: Fixture, timeoutMs: number): Promise<number> {
    const jobId = this.jobId(fixture);
    const done = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => this.settle(jobId, new Error(`build ${jobId} did not finish within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiting.set(jobId, { resolve, reject, timer });
    });
    // A bench that stops early (its push failed) never awaits this: not an unhandled rejection.
    done.catch(() => undefined);
    return done;
  }

  push(fixture: Fixture): Promise<string> {
    return queueBuild(this.producer, fixture.repo.url(), fixture.commit);
  }

  async close(): Promise<void> {
    for (const jobId of [...this.waiting.keys()]) this.settle(jobId, new Error('closed'));
    await this.events.close();
    await this.producer.close();
  }

  private settle(jobId: string, outcome: number | Error): void {
    const waiter = this.waiting.get(jobId);
    if (!waiter) return;
    this.waiting.delete(jobId);
    clearTimeout(waiter.timer);
    if (outcome instanceof Error) waiter.reject(outcome);
    else waiter.resolve(outcome);
  }
}

/**
 * The `state` the builder's processor returned. BullMQ types a completed event's return
 * value as a string but hands it over already parsed; take either, and never throw: an
 * exception here would stop QueueEvents reading the stream.
 */
function stateOf(returnvalue: unknown): string {
  try {
    const value: unknown = typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue;
    const state = (value as { state?: unknown } | null)?.state;
    return typeof state === 'string' ? state : `with return value ${JSON.stringify(value)}`;
  } catch {
    return `with return value ${String(returnvalue)}`;
  }
}
