export { ConfigError, envVar, parseEnv } from './env';
export { JsonErrorFilter } from './http';
export { PinoNestLogger, createLogger } from './logger';
export type { Logger } from './logger';
export { ProbesModule } from './probes';
export type { ProbesOptions, ReadinessCheck } from './probes';
export { closeOnSignals } from './lifecycle';
export { startGrpcServer } from './grpc';
export type { GrpcService, RunningGrpcServer } from './grpc';
