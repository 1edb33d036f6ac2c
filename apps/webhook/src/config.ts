import { REDIS_USERS, type RedisConnectionSettings } from '@seed/builds-queue';
import { ConfigError, envVar, parseEnv, redisEnv, redisSettings } from '@seed/service-kit';
import { z } from 'zod';
import { loadFlakeRegistry } from './flake-registry';
import type { FlakesSource } from './served-flakes';

const envSchema = z.object({
  SEED_WEBHOOK_HOST: z.string().min(1).default('127.0.0.1'),
  SEED_WEBHOOK_PORT: envVar.port(8080),
  // Pushes are a few KiB to a few hundred; the shared URL parses a body before it knows
  // whose secret signs it, so its size is what an unauthenticated sender costs.
  SEED_WEBHOOK_BODY_LIMIT_BYTES: envVar.positiveInt(1024 * 1024),
  SEED_WEBHOOK_MAX_UNVERIFIED_BYTES: envVar.positiveInt(4 * 1024 * 1024),
  ...redisEnv(REDIS_USERS.webhook),
  SEED_REDIS_COMMAND_TIMEOUT_MS: envVar.positiveInt(2_000),
  SEED_DELIVERY_TTL_HOURS: envVar.positiveInt(72),
  // A registry document (tests, a cluster-less run); without one, the SeedFlakes.
  SEED_FLAKES_FILE: z.string().min(1).optional(),
  SEED_FLAKES: z.string().min(1).optional(),
  SEED_KUBECONFIG: z.string().min(1).optional(),
  SEED_WEBHOOK_SECRETS_DIR: z.string().startsWith('/').default('/etc/seed/webhook-secrets'),
  SEED_WEBHOOK_SECRETS_RESYNC_SECONDS: envVar.positiveInt(30),
  // The safety net under webhooks; a registry entry's pollIntervalSeconds overrides it.
  SEED_POLL_INTERVAL_SECONDS: envVar.nonNegativeInt(300),
  SEED_POLL_TIMEOUT_SECONDS: envVar.positiveInt(30),
  SEED_LOG_LEVEL: envVar.logLevel(),
});

export interface WebhookConfig {
  http: {
    host: string;
    port: number;
    bodyLimitBytes: number;
    /** Bytes of deliveries to the shared URLs read and parsed at once; more get 503. */
    maxUnverifiedBytes: number;
  };
  redis: RedisConnectionSettings & { commandTimeoutMs: number };
  flakes: FlakesSource;
  /** How long a delivery id and a queued commit are remembered for deduplication. */
  dedupeTtlSeconds: number;
  poll: { defaultIntervalSeconds: number; timeoutMs: number };
  logLevel: string;
}

/** Reads and checks the webhook's whole configuration before anything starts. */
export function loadWebhookConfig(env: NodeJS.ProcessEnv = process.env): WebhookConfig {
  const vars = parseEnv(envSchema, env);
  if (vars.SEED_FLAKES !== undefined && vars.SEED_FLAKES_FILE !== undefined) {
    throw new ConfigError(['SEED_FLAKES and SEED_FLAKES_FILE: give one of them, not both']);
  }
  return {
    http: {
      host: vars.SEED_WEBHOOK_HOST,
      port: vars.SEED_WEBHOOK_PORT,
      bodyLimitBytes: vars.SEED_WEBHOOK_BODY_LIMIT_BYTES,
      maxUnverifiedBytes: vars.SEED_WEBHOOK_MAX_UNVERIFIED_BYTES,
    },
    redis: { ...redisSettings(vars), commandTimeoutMs: vars.SEED_REDIS_COMMAND_TIMEOUT_MS },
    flakes:
      vars.SEED_FLAKES !== undefined
        ? { document: loadFlakeRegistry({ inline: vars.SEED_FLAKES }, env) }
        : vars.SEED_FLAKES_FILE !== undefined
          ? { document: loadFlakeRegistry({ file: vars.SEED_FLAKES_FILE }, env) }
          : {
              seedFlakes: {
                kubeconfig: vars.SEED_KUBECONFIG,
                secretsDir: vars.SEED_WEBHOOK_SECRETS_DIR,
                resyncMs: vars.SEED_WEBHOOK_SECRETS_RESYNC_SECONDS * 1000,
              },
            },
    dedupeTtlSeconds: vars.SEED_DELIVERY_TTL_HOURS * 3600,
    poll: {
      defaultIntervalSeconds: vars.SEED_POLL_INTERVAL_SECONDS,
      timeoutMs: vars.SEED_POLL_TIMEOUT_SECONDS * 1000,
    },
    logLevel: vars.SEED_LOG_LEVEL,
  };
}
