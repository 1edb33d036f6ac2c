export { ConfigError, envVar, parseEnv } from './env';
export { redisEnv, redisSettings } from './redis-env';
export { JsonErrorFilter } from './http';
export { PinoNestLogger, createLogger } from './logger';
export type { Logger } from './logger';
export { ProbesModule } from './probes';
export type { ProbesOptions, ReadinessCheck } from './probes';
export { ShutdownHook, closeOnSignals } from './lifecycle';
export { startGrpcServer } from './grpc';
export type { GrpcService, GrpcTransport, RunningGrpcServer } from './grpc';
export { BearerTokenGuard, TokenFile, bearerToken } from './bearer-token';
export { listMetricsIfAsked } from './metrics-listing';
export { diskUsage, registerStoreDiskGauges } from './store-disk';
export type { DiskUsage } from './store-disk';
export {
  GC_TRIGGERS,
  StoreGcMetrics,
  StoreGcSchedule,
  storeGcEnv,
  storeGcTiming,
  underDiskPressure,
} from './store-gc';
export type { GcOutcome, GcTrigger, StoreGcScheduleOptions, StoreGcTiming } from './store-gc';
