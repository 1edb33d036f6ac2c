import {
  DEFAULT_MAX_QUEUED_BUILDS,
  BUILD_JOB_NAME,
  BUILDS_QUEUE,
  buildJobId,
  buildJobOptions,
  type BuildJob,
  redactFlakeRef,
  type Forge,
} from '@seed/contracts';
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis, RedisOptions } from 'ioredis';
import { RedisUser, type RedisConnectionSettings } from './connection';
import { deliveryKey, latestBuildKey, queuedKey, waitingBuildsKey } from './keys';
import { RECORD_DELIVERY } from './scripts';

export interface RecordedBuild {
  jobId: string;
  /** False when this flake and commit were queued before (a second hook, a resend). */
  created: boolean;
  /** The flake's previous latest build, which this one replaces. */
  supersedes?: string;
}

export type DeliveryRecord =
  | {
      duplicate: false;
      builds: RecordedBuild[];
      /** Superseded builds removed from the queue unbuilt to keep their flake under its cap. */
      dropped: string[];
    }
  | { duplicate: true; jobIds: string[] };

/**
 * A build whose flake already has its cap of builds waiting for a worker, none of which
 * could be dropped: the delivery is refused and nothing of it recorded.
 */
export class QueueLimitReached extends Error {
  override readonly name = 'QueueLimitReached';

  constructor(
    readonly flake: string,
    readonly limit: number,
    readonly waiting: number,
  ) {
    super(
      `flake ${redactFlakeRef(flake)} has ${waiting} build(s) waiting for a builder, its limit (maxQueuedBuilds: ${limit}): push again once one has started`,
    );
  }
}

/** BullMQ states of a job no worker has taken. */
const UNTAKEN_STATES: ReadonlySet<string> = new Set([
  'waiting',
  'prioritized',
  'delayed',
  'waiting-children',
]);

export interface BuildsQueueProducerOptions {
  /** The webhook's Redis user. */
  redis: RedisConnectionSettings;
  /** Deadline of each Redis command. */
  commandTimeoutMs: number;
  /** How long a delivery id and a queued flake commit are remembered, for dedupe. */
  dedupeTtlSeconds: number;
  onConnectionError: (error: Error) => void;
  /**
   * Changes to the catalog's job options for every build this producer adds (tests
   * shorten the retry backoff).
   */
  jobOptions?: Pick<JobsOptions, 'backoff'>;
  /**
   * The most builds of a flake that may wait for a worker at once (the registry's
   * `maxQueuedBuilds`); `DEFAULT_MAX_QUEUED_BUILDS` when left out.
   */
  maxQueuedBuilds?: (flake: string) => number;
}

/**
 * The webhook's side of the builds queue: the deliveries it acted on and the commits it
 * queued (for the dedupe window), each flake's latest build, and the jobs. A delivery
 * waits on two round trips: recording it, then storing its new builds.
 */
export class BuildsQueueProducer {
  private readonly jobs: Queue;
  private readonly queueConnection: Redis;
  private readonly redis: Redis & {
    seedRecordDelivery(
      numberOfKeys: number,
      ...keysAndArgs: (string | number)[]
    ): Promise<(string | null)[]>;
  };
  private readonly dedupeTtlSeconds: number;
  private readonly jobOptions: Pick<JobsOptions, 'backoff'>;
  private readonly maxQueuedBuilds: (flake: string) => number;

  /**
   * Two connections: BullMQ defines dozens of Lua commands on its own, which makes every
   * ioredis call built on that connection expensive; Seed's keys go through a plain one.
   * Both fail fast while Redis is away, so a delivery gets a 503 (and the forge resends)
   * instead of waiting in an in-memory queue that a restart would lose.
   */
  constructor(options: BuildsQueueProducerOptions) {
    const connection: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs,
    };
    const user = new RedisUser(options.redis, options.onConnectionError);
    const redis = user.connect(connection);
    redis.defineCommand('seedRecordDelivery', { lua: RECORD_DELIVERY });
    this.redis = redis as typeof this.redis;
    this.queueConnection = user.connect(connection);
    this.jobs = new Queue(BUILDS_QUEUE, { connection: this.queueConnection });
    this.dedupeTtlSeconds = options.dedupeTtlSeconds;
    this.jobOptions = options.jobOptions ?? {};
    this.maxQueuedBuilds = options.maxQueuedBuilds ?? (() => DEFAULT_MAX_QUEUED_BUILDS);
  }

  /**
   * Waits until both connections are up, at most `timeoutMs`. Commands fail at once while
   * they are not (no offline queue), so a service should not take traffic before this.
   */
  async connected(timeoutMs: number): Promise<boolean> {
    const connections: Redis[] = [this.redis, this.queueConnection];
    const ready = (connection: Redis) =>
      connection.status === 'ready'
        ? Promise.resolve()
        : new Promise<void>((resolve) => connection.once('ready', resolve));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([Promise.all(connections.map(ready)).then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** For readiness: true when Redis answers. */
  async ping(): Promise<true | string> {
    return (await this.redis.ping()) === 'PONG' ? true : 'unexpected PING answer';
  }

  /**
   * Queues the builds of one delivery: records the delivery, then stores each build not
   * queued before. A delivery seen before changes nothing and answers the job ids it
   * queued then. A flake at its cap of waiting builds first loses the oldest of those a
   * newer push superseded; when that is not enough the delivery is refused
   * (`QueueLimitReached`).
   */
  async queue(
    forge: Forge,
    deliveryId: string,
    builds: readonly BuildJob[],
  ): Promise<DeliveryRecord> {
    let dropped: string[] = [];
    let record = await this.record(forge, deliveryId, builds);
    // Only a flake at its cap pays for making room; the script wrote nothing then.
    if ('atCap' in record) {
      dropped = await this.makeRoom(builds);
      record = await this.record(forge, deliveryId, builds);
      if ('atCap' in record) throw record.atCap;
    }
    if (record.duplicate) return record;
    const fresh = builds.filter((_, index) => record.builds[index]!.created);
    await Promise.all(fresh.map((build) => this.add(build)));
    return { ...record, dropped };
  }

  /** The job id of the flake's latest recorded push, whether a delivery's or a poll's. */
  latestJobId(flake: string): Promise<string | null> {
    return this.redis.get(latestBuildKey(flake));
  }

  /** Jobs per state, for the queue depth gauge. */
  async depth(): Promise<Record<string, number>> {
    return this.jobs.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'failed');
  }

  /** Seconds the oldest waiting build has waited, 0 when none waits: the stuck-queue alert's. */
  async oldestWaitingSeconds(now = Date.now()): Promise<number> {
    const [id] = await this.jobs.getRanges(['wait'], 0, 0, true);
    if (id === undefined) return 0;
    const timestamp = Number(await this.redis.hget(this.jobs.toKey(id), 'timestamp'));
    return timestamp > 0 ? Math.max(0, (now - timestamp) / 1000) : 0;
  }

  async close(): Promise<void> {
    await this.jobs.close();
    this.queueConnection.disconnect();
    this.redis.disconnect();
  }

  /**
   * Brings each flake at its cap of waiting builds under it, dropping the oldest builds a
   * newer push superseded (every waiting build but the flake's latest): unbuilt, a worker
   * would only end them `superseded`. Runs only after the recording script found a flake
   * at its cap (it counts in the same step). Entries whose job a worker already took, or which is
   * gone (a worker crashed before clearing it), are cleared on the way.
   */
  private async makeRoom(builds: readonly BuildJob[]): Promise<string[]> {
    const pipeline = this.redis.pipeline();
    for (const build of builds) pipeline.zcard(waitingBuildsKey(build.flake));
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed) throw failed[0]!;
    const dropped: string[] = [];
    for (const [index, build] of builds.entries()) {
      const waiting = Number(replies[index]?.[1]);
      const cap = this.maxQueuedBuilds(build.flake);
      if (waiting >= cap) dropped.push(...(await this.dropSuperseded(build, waiting, cap)));
    }
    return dropped;
  }

  private async dropSuperseded(build: BuildJob, waiting: number, cap: number): Promise<string[]> {
    const key = waitingBuildsKey(build.flake);
    const [ids, latest] = await Promise.all([
      this.redis.zrange(key, 0, -1),
      this.redis.get(latestBuildKey(build.flake)),
    ]);
    const own = buildJobId(build.flake, build.commit, build.rebuild);
    const dropped: string[] = [];
    for (const id of ids) {
      if (waiting < cap) break;
      if (id === latest || id === own) continue;
      if (UNTAKEN_STATES.has(await this.jobs.getJobState(id))) {
        // 0: a worker took it meanwhile, and clears its entry itself.
        if ((await this.jobs.remove(id)) !== 1) continue;
        dropped.push(id);
      }
      await this.redis.zrem(key, id);
      waiting -= 1;
    }
    return dropped;
  }

  /**
   * Records a delivery and its builds, or finds it was recorded before. A resend carries
   * the same builds, so those are what a known delivery restores if they were lost.
   */
  private async record(
    forge: Forge,
    deliveryId: string,
    builds: readonly BuildJob[],
  ): Promise<
    | { duplicate: false; builds: RecordedBuild[] }
    | { duplicate: true; jobIds: string[] }
    | { atCap: QueueLimitReached }
  > {
    const keys = [deliveryKey(forge, deliveryId)];
    const args: (string | number)[] = [this.dedupeTtlSeconds, Date.now()];
    const caps = builds.map((build) => this.maxQueuedBuilds(build.flake));
    const jobIds = builds.map((build) => buildJobId(build.flake, build.commit, build.rebuild));
    builds.forEach((build, index) => {
      keys.push(queuedKey(build), latestBuildKey(build.flake), waitingBuildsKey(build.flake));
      args.push(jobIds[index]!, caps[index]!);
    });
    const [known, ...perBuild] = await this.redis.seedRecordDelivery(keys.length, ...keys, ...args);
    if (typeof known === 'string') {
      const recorded = known.split(' ');
      await this.restoreLost(builds.filter((_, index) => recorded.includes(jobIds[index]!)));
      return { duplicate: true, jobIds: recorded };
    }
    if (perBuild[0] === '!') {
      const index = Number(perBuild[1]) - 1;
      return {
        atCap: new QueueLimitReached(builds[index]!.flake, caps[index]!, Number(perBuild[2])),
      };
    }
    return {
      duplicate: false,
      builds: jobIds.map((jobId, index) => {
        const previous = perBuild[index];
        return {
          jobId,
          created: previous !== '=',
          supersedes: previous && previous !== '=' && previous !== jobId ? previous : undefined,
        };
      }),
    };
  }

  /** Stores a build; adding the same flake and commit again is a no-op in BullMQ. */
  protected add(build: BuildJob): Promise<unknown> {
    return this.jobs.add(BUILD_JOB_NAME, build, { ...buildJobOptions(build), ...this.jobOptions });
  }

  /**
   * A delivery is recorded before its builds are stored, so a failure in between leaves a
   * record without a job. The forge's resend lands here: a build that is still its
   * flake's latest but has no job is stored now. A missing build that is no longer the
   * latest was superseded, not lost.
   */
  private async restoreLost(builds: readonly BuildJob[]): Promise<void> {
    if (builds.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const build of builds) {
      pipeline
        .exists(this.jobs.toKey(buildJobId(build.flake, build.commit, build.rebuild)))
        .get(latestBuildKey(build.flake));
    }
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed) throw failed[0]!;
    const lost = builds.filter((build, index) => {
      const [exists, latest] = [replies[2 * index]?.[1], replies[2 * index + 1]?.[1]];
      return exists === 0 && latest === buildJobId(build.flake, build.commit, build.rebuild);
    });
    await Promise.all(lost.map((build) => this.add(build)));
  }
}
