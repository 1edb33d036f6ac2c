import { availableParallelism } from 'node:os';
import { envVar, parseEnv } from '@seed/service-kit';
import { z } from 'zod';

const envSchema = z.object({
  SEED_REDIS_URL: envVar.redisUrl('redis://127.0.0.1:6379'),
  SEED_RECONCILER_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d{1,5}$/, { error: 'expected HOST:PORT of the reconciler gRPC server' })
    .default('127.0.0.1:9090'),
  SEED_BUILDER_HOST: z.string().min(1).default('127.0.0.1'),
  SEED_BUILDER_PORT: envVar.port(8081),
  SEED_BUILDER_CONCURRENCY: envVar.positiveInt(availableParallelism()),
  SEED_CANCEL_SUPERSEDED: envVar.flag(true),
  SEED_NIX_BIN: z.string().min(1).default('nix'),
  SEED_NIX_CONF: z.string().min(1).default('/etc/seed/nix.conf'),
  SEED_EVAL_TIMEOUT_MS: envVar.positiveInt(5 * 60_000),
  SEED_BUILD_TIMEOUT_MS: envVar.positiveInt(60 * 60_000),
  SEED_APPLY_DEADLINE_MS: envVar.positiveInt(30_000),
  SEED_APPLY_ATTEMPTS: envVar.positiveInt(6),
  SEED_APPLY_BACKOFF_MS: envVar.positiveInt(1_000),
  SEED_JOB_LOCK_MS: envVar.positiveInt(30_000),
  SEED_BUILD_LOG_BYTES: envVar.positiveInt(64 * 1024),
  SEED_SHUTDOWN_GRACE_MS: envVar.positiveInt(60_000),
  SEED_LOG_LEVEL: envVar.logLevel(),
});

export interface BuilderConfig {
  http: { host: string; port: number };
  redisUrl: string;
  worker: {
    concurrency: number;
    /** How long a job (and its flake) stays locked to a worker that stopped answering. */
    lockMs: number;
    cancelSuperseded: boolean;
    shutdownGraceMs: number;
  };
  nix: { binary: string; confFile: string; evaluateTimeoutMs: number; buildTimeoutMs: number };
  reconciler: { address: string; deadlineMs: number; attempts: number; backoffMs: number };
  buildLogBytes: number;
  logLevel: string;
}

export function loadBuilderConfig(env: NodeJS.ProcessEnv = process.env): BuilderConfig {
  const vars = parseEnv(envSchema, env);
  return {
    http: { host: vars.SEED_BUILDER_HOST, port: vars.SEED_BUILDER_PORT },
    redisUrl: vars.SEED_REDIS_URL,
    worker: {
      concurrency: vars.SEED_BUILDER_CONCURRENCY,
      lockMs: vars.SEED_JOB_LOCK_MS,
      cancelSuperseded: vars.SEED_CANCEL_SUPERSEDED,
      shutdownGraceMs: vars.SEED_SHUTDOWN_GRACE_MS,
    },
    nix: {
      binary: vars.SEED_NIX_BIN,
      confFile: vars.SEED_NIX_CONF,
      evaluateTimeoutMs: vars.SEED_EVAL_TIMEOUT_MS,
      buildTimeoutMs: vars.SEED_BUILD_TIMEOUT_MS,
    },
    reconciler: {
      address: vars.SEED_RECONCILER_ADDRESS,
      deadlineMs: vars.SEED_APPLY_DEADLINE_MS,
      attempts: vars.SEED_APPLY_ATTEMPTS,
      backoffMs: vars.SEED_APPLY_BACKOFF_MS,
    },
    buildLogBytes: vars.SEED_BUILD_LOG_BYTES,
    logLevel: vars.SEED_LOG_LEVEL,
  };
}
