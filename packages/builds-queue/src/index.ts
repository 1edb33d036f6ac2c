// The builds queue between the webhook (producer) and the builder (consumer). Its Redis
// keys, Lua scripts and the ACL users that reach them live only in this package; a test of
// its own keeps them here.
export { REDIS_USERS, redisAclRules, redisAclUsers } from './acl';
export type { BuildsQueueService } from './acl';
export type { RedisConnectionSettings } from './connection';
export { BuildsQueueConsumer } from './consumer.repository';
export { BuildsQueueProducer, QueueLimitReached } from './producer.repository';
export type { DeliveryRecord, RecordedBuild } from './producer.repository';
