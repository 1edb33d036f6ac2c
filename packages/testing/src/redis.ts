import { redisAclUsers } from '@seed/builds-queue';
import { startRedis as startRedisServer, type LocalRedis } from '@seed/local-parts';

/**
 * A real Redis as Seed runs it: the default user off, and the webhook's and the builder's
 * users with the builds queue's ACL rules (`redis.serviceEnv(REDIS_USERS.webhook)`).
 */
export function startRedis(): Promise<LocalRedis> {
  return startRedisServer(redisAclUsers());
}
