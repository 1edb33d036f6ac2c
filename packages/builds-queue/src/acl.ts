import { KEY_ACCESS } from './keys';

// Redis ACL users of the services on the builds queue. Each gets its own keys
// (`KEY_ACCESS`) and only the commands it sends; the `default` user is off, so a client
// without a password gets nothing. No user here may run FLUSHALL, CONFIG, DEBUG, KEYS,
// SCAN, MONITOR, ACL, SHUTDOWN or any other command outside these lists.

/** The services with a Redis user of their own. */
export type BuildsQueueService = keyof typeof KEY_ACCESS;

/** Each service's Redis user name (not a secret: its password is). */
export const REDIS_USERS: Record<BuildsQueueService, string> = {
  webhook: 'seed-webhook',
  builder: 'seed-builder',
};

/**
 * What Redis checks inside BullMQ's Lua scripts: a script's calls are run as the user that
 * sent it. Every command of BullMQ's scripts is here (a test of this package reads them
 * from the installed BullMQ), none of them dangerous; the keys limit where they reach.
 */
const BULLMQ_SCRIPT_COMMANDS = (
  'del exists get hdel hexists hget hgetall hincrby hlen hmget hmset hscan hset incr ' +
  'lindex llen lpop lpos lpush lrange lrem lset ltrim persist pexpire pttl rename rpop ' +
  'rpoplpush rpush sadd scard sismember smembers srem sscan set type xadd xtrim zadd ' +
  'zcard zcount zpopmin zrange zrangebyscore zrem zremrangebyrank zremrangebyscore ' +
  'zrevrange zrevrangebyscore zscore'
).split(' ');

/**
 * What ioredis and BullMQ send on every connection: INFO for the ready check and BullMQ's
 * version check (it tells the server's version, memory and client counts, no keys), the
 * connection's name, and scripts by hash (EVAL once after a restart emptied the cache).
 */
const CLIENT_COMMANDS = ['ping', 'info', 'client|setname', 'evalsha', 'eval', 'multi', 'exec'];

/** Commands each service sends itself, beside the scripts (its own and BullMQ's). */
const OWN_COMMANDS: Record<BuildsQueueService, string[]> = {
  // The producer's restore of a lost build reads a job's hash and the flake's latest; the
  // queue-age gauge reads the oldest waiting job's timestamp; the per-flake cap counts,
  // lists, trims and expires the flake's waiting set.
  webhook: ['exists', 'expire', 'get', 'hget', 'zcard', 'zrange', 'zrem'],
  // Build records, their indexes and the flake lock; the worker blocks on BullMQ's marker.
  builder: [
    'get',
    'mget',
    'set',
    'zadd',
    'zrevrange',
    'zremrangebyrank',
    'zrem',
    'expire',
    'hgetall',
    'bzpopmin',
  ],
};

/**
 * The ACL rules of a service's user, without `on` and its password: `ACL SETUSER <name>
 * <rules…>` or an ACL file line `user <name> on #<sha256> <rules…>`.
 */
export function redisAclRules(service: BuildsQueueService): string[] {
  const commands = [
    ...new Set([...CLIENT_COMMANDS, ...BULLMQ_SCRIPT_COMMANDS, ...OWN_COMMANDS[service]]),
  ];
  return [
    'resetkeys',
    'resetchannels',
    '-@all',
    ...commands.sort().map((command) => `+${command}`),
    ...KEY_ACCESS[service],
  ];
}

/** Every service's user with its rules: what a Redis for Seed is started with (tests, `seed up`). */
export function redisAclUsers(): { name: string; rules: string[] }[] {
  return (Object.keys(REDIS_USERS) as BuildsQueueService[]).map((service) => ({
    name: REDIS_USERS[service],
    rules: redisAclRules(service),
  }));
}
