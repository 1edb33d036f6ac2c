// The builds queue between the webhook (producer) and the builder (consumer). Its Redis
// keys and Lua scripts live only in this package; a test of its own keeps them here.
export { BuildsQueueConsumer } from './consumer.repository';
export { BuildsQueueProducer } from './producer.repository';
export type { DeliveryRecord, RecordedBuild } from './producer.repository';
