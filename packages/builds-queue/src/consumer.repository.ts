import { BUILDS_QUEUE, buildJobSchema, queuedBuildRecord, type BuildRecord } from '@seed/contracts';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { RedisUser, type RedisConnectionSettings } from './connection';
import {
  buildRecordKey,
  flakeBuildsKey,
  flakeLockKey,
  latestBuildKey,
  RECENT_BUILDS_KEY,
  waitingBuildsKey,
} from './keys';
import { RELEASE_LOCK, RENEW_LOCK } from './scripts';

const RECORD_TTL_SECONDS = 30 * 24 * 3600;
const RECORDS_PER_FLAKE = 200;
const RECENT_RECORDS = 200;

type LockCommands = {
  seedReleaseLock(key: string, owner: string): Promise<number>;
  seedRenewLock(key: string, owner: string, ttlMs: number): Promise<number>;
};

/**
 * The builder's side of the builds queue beside BullMQ's worker: build records (state,
 * phases, capped log) indexed per flake, the one-build-at-a-time lock of each flake, and
 * each flake's latest build as the webhook recorded it.
 */
export class BuildsQueueConsumer {
  private readonly redis: Redis & LockCommands;
  /** Read-only use of the queue: builds no worker has started have no record yet. */
  private readonly queue: Queue;
  private readonly user: RedisUser;
  /** Connections this consumer made beside `redis`, which BullMQ does not close. */
  private readonly connections: Redis[] = [];

  /** Reads the password file now: throws, naming it, when it cannot be used. */
  constructor(connection: RedisConnectionSettings, onConnectionError: (error: Error) => void) {
    this.user = new RedisUser(connection, onConnectionError);
    const redis = this.user.connect({ maxRetriesPerRequest: 3 });
    redis.defineCommand('seedReleaseLock', { numberOfKeys: 1, lua: RELEASE_LOCK });
    redis.defineCommand('seedRenewLock', { numberOfKeys: 1, lua: RENEW_LOCK });
    this.redis = redis as Redis & LockCommands;
    const queueConnection = this.user.connect({ maxRetriesPerRequest: 3 });
    this.connections.push(queueConnection);
    this.queue = new Queue(BUILDS_QUEUE, { connection: queueConnection });
  }

  /**
   * A connection for BullMQ's worker on the queue, as the same user (BullMQ makes its
   * blocking connection from it). Closed by `close`, which must come after the worker's.
   */
  workerConnection(): Redis {
    const connection = this.user.connect({ maxRetriesPerRequest: null });
    this.connections.push(connection);
    return connection;
  }

  async save(record: BuildRecord): Promise<void> {
    const index = flakeBuildsKey(record.flake);
    const score = Date.parse(record.receivedAt) || Date.now();
    await this.redis
      .multi()
      .set(buildRecordKey(record.id), JSON.stringify(record), 'EX', RECORD_TTL_SECONDS)
      .zadd(index, score, record.id)
      .zremrangebyrank(index, 0, -RECORDS_PER_FLAKE - 1)
      .expire(index, RECORD_TTL_SECONDS)
      .zadd(RECENT_BUILDS_KEY, score, record.id)
      .zremrangebyrank(RECENT_BUILDS_KEY, 0, -RECENT_RECORDS - 1)
      .exec();
  }

  /** A build's record, or a `queued` one for a job no worker has started yet. */
  async get(id: string): Promise<BuildRecord | undefined> {
    const stored = await this.redis.get(buildRecordKey(id));
    if (stored !== null) return JSON.parse(stored) as BuildRecord;
    const job = await this.queue.getJob(id);
    const payload = buildJobSchema.safeParse(job?.data);
    if (!job || !payload.success) return undefined;
    return queuedBuildRecord(id, payload.data, new Date(job.timestamp));
  }

  /** A flake's builds, or every flake's, newest first. */
  async list(flake: string | undefined, limit: number): Promise<BuildRecord[]> {
    const index = flake === undefined ? RECENT_BUILDS_KEY : flakeBuildsKey(flake);
    const ids = await this.redis.zrevrange(index, 0, limit - 1);
    if (ids.length === 0) return [];
    const stored = await this.redis.mget(ids.map(buildRecordKey));
    return stored
      .filter((value): value is string => value !== null)
      .map((value) => JSON.parse(value) as BuildRecord);
  }

  /** The job id of the flake's newest build, as the webhook recorded it. */
  async latest(flake: string): Promise<string | undefined> {
    return (await this.redis.get(latestBuildKey(flake))) ?? undefined;
  }

  /** A worker took the build: it no longer counts against its flake's cap of waiting builds. */
  async taken(flake: string, id: string): Promise<void> {
    await this.redis.zrem(waitingBuildsKey(flake), id);
  }

  /** Takes the flake's build lock for `owner`; false when another build holds it. */
  async lockFlake(flake: string, owner: string, ttlMs: number): Promise<boolean> {
    const taken = await this.redis.set(flakeLockKey(flake), owner, 'PX', ttlMs, 'NX');
    return taken === 'OK' || (await this.redis.get(flakeLockKey(flake))) === owner;
  }

  async renewFlakeLock(flake: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.seedRenewLock(flakeLockKey(flake), owner, ttlMs)) === 1;
  }

  async unlockFlake(flake: string, owner: string): Promise<void> {
    await this.redis.seedReleaseLock(flakeLockKey(flake), owner);
  }

  async ping(): Promise<true | string> {
    return (await this.redis.ping()) === 'PONG' ? true : 'unexpected PING answer';
  }

  async close(): Promise<void> {
    await this.queue.close();
    for (const connection of this.connections) connection.disconnect();
    this.redis.disconnect();
  }
}
