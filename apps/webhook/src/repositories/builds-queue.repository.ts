import { hash } from 'node:crypto';
import {
  BUILD_JOB_NAME,
  BUILDS_QUEUE,
  buildJobId,
  buildJobOptions,
  flakeKey,
  latestBuildKey,
  type BuildJob,
  type Forge,
} from '@seed/contracts';
import { Queue } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';

export interface RecordedBuild {
  jobId: string;
  /** False when this flake and commit were queued before (a second hook, a resend). */
  created: boolean;
  /** The flake's previous latest build, which this one replaces. */
  supersedes?: string;
}

export type DeliveryRecord =
  { duplicate: false; builds: RecordedBuild[] } | { duplicate: true; jobIds: string[] };

/*
 * One atomic step per delivery. A delivery id already recorded returns the job ids it
 * queued and changes nothing. Otherwise the delivery is recorded with its job ids, and
 * each build not queued before is marked queued and becomes its flake's latest build.
 *   KEYS: delivery key, then per build its queued marker and its flake's latest key
 *   ARGV: ttl, then per build its job id
 * Returns { recorded job ids, space-separated } for a known delivery, else per build "="
 * (queued before) or the previous latest job id ("" when none).
 */
const RECORD_DELIVERY = `
local known = redis.call('SET', KEYS[1], table.concat(ARGV, ' ', 2), 'NX', 'GET', 'EX', ARGV[1])
if known then return { known } end
local out = { false }
for i = 1, (#KEYS - 1) / 2 do
  if redis.call('SET', KEYS[2 * i], '1', 'NX', 'EX', ARGV[1]) then
    out[#out + 1] = redis.call('SET', KEYS[2 * i + 1], ARGV[1 + i], 'GET') or ''
  else
    out[#out + 1] = '='
  end
end
return out
`;

/**
 * What the webhook keeps in Redis: the builds queue, the deliveries it acted on and the
 * commits it queued (for the dedupe window), and each flake's latest build. A delivery
 * waits on two round trips: recording it, then storing its new builds.
 */
export class BuildsQueueRepository {
  private readonly queue: Queue;
  private readonly queueConnection: Redis;
  private readonly redis: Redis & {
    seedRecordDelivery(
      numberOfKeys: number,
      ...keysAndArgs: (string | number)[]
    ): Promise<(string | null)[]>;
  };

  /**
   * Two connections: BullMQ defines dozens of Lua commands on its own, which makes every
   * ioredis call built on that connection expensive; Seed's keys go through a plain one.
   * Both fail fast while Redis is away, so a delivery gets a 503 (and the forge resends)
   * instead of waiting in an in-memory queue that a restart would lose.
   */
  constructor(
    url: string,
    commandTimeoutMs: number,
    private readonly dedupeTtlSeconds: number,
    onConnectionError: (error: Error) => void,
  ) {
    const options: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: commandTimeoutMs,
    };
    const redis = new Redis(url, options);
    redis.on('error', onConnectionError);
    // ioredis runs it by EVALSHA and loads it again after a Redis restart.
    redis.defineCommand('seedRecordDelivery', { lua: RECORD_DELIVERY });
    this.redis = redis as typeof this.redis;
    this.queueConnection = new Redis(url, options);
    this.queueConnection.on('error', onConnectionError);
    this.queue = new Queue(BUILDS_QUEUE, { connection: this.queueConnection });
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
   * Records a delivery and its builds, or finds it was recorded before. A resend carries
   * the same builds, so those are what a known delivery restores if they were lost.
   */
  async record(
    forge: Forge,
    deliveryId: string,
    builds: readonly BuildJob[],
  ): Promise<DeliveryRecord> {
    const keys = [deliveryKey(forge, deliveryId)];
    for (const build of builds) keys.push(queuedKey(build), latestBuildKey(build.flake));
    const jobIds = builds.map((build) => buildJobId(build.flake, build.commit));
    const [known, ...perBuild] = await this.redis.seedRecordDelivery(
      keys.length,
      ...keys,
      this.dedupeTtlSeconds,
      ...jobIds,
    );
    if (typeof known === 'string') {
      const recorded = known.split(' ');
      await this.restoreLost(builds.filter((_, index) => recorded.includes(jobIds[index]!)));
      return { duplicate: true, jobIds: recorded };
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
  add(build: BuildJob): Promise<unknown> {
    return this.queue.add(BUILD_JOB_NAME, build, buildJobOptions(build));
  }

  /** Jobs per state, for the queue depth gauge. */
  async depth(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'failed');
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.queueConnection.disconnect();
    this.redis.disconnect();
  }

  /**
   * A delivery is recorded before its builds are stored, so a failure in between (answered
   * 503) leaves a record without a job. The forge's resend lands here: a build that is
   * still its flake's latest but has no job is stored now. A missing build that is no
   * longer the latest was superseded, not lost.
   */
  private async restoreLost(builds: readonly BuildJob[]): Promise<void> {
    if (builds.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const build of builds) {
      pipeline
        .exists(this.queue.toKey(buildJobId(build.flake, build.commit)))
        .get(latestBuildKey(build.flake));
    }
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed) throw failed[0]!;
    const lost = builds.filter((build, index) => {
      const [exists, latest] = [replies[2 * index]?.[1], replies[2 * index + 1]?.[1]];
      return exists === 0 && latest === buildJobId(build.flake, build.commit);
    });
    await Promise.all(lost.map((build) => this.add(build)));
  }
}

/** Marks a flake's commit queued for the dedupe window, whatever became of its job. */
function queuedKey(build: BuildJob): string {
  return `seed:builds:queued:${flakeKey(build.flake)}:${build.commit}`;
}

// Ids are the sender's text: hash them so no byte of theirs shapes a key.
function deliveryKey(forge: Forge, deliveryId: string): string {
  return `seed:webhook:delivery:${forge}:${hash('sha256', deliveryId, 'hex').slice(0, 32)}`;
}
