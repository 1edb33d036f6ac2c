import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_MAX_OUTPUT_BYTES, publicKeyOf } from '@seed/nix-eval';
import { REDIS_USERS, type RedisConnectionSettings } from '@seed/builds-queue';
import type { TlsDirectory } from '@seed/contracts';
import {
  envVar,
  parseEnv,
  redisEnv,
  redisSettings,
  storeGcEnv,
  storeGcTiming,
  type StoreGcTiming,
  type TokenFile,
} from '@seed/service-kit';
import { z } from 'zod';
import type { ForgeStatusOptions } from './forge-statuses';

// Nix reads both paths out of a store URL (`file://DIR?secret-key=FILE&…`): keep them plain.
const STORE_URL_SAFE = /^\/[^\s?&#%]*$/;

/** An absolute folder that exists (or can be made) and that this process may write. */
const writableDir = z
  .string()
  .regex(STORE_URL_SAFE, {
    error: 'expected an absolute path without spaces or any of ? & # %',
  })
  .superRefine((dir, ctx) => {
    try {
      mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.W_OK);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `cannot write there: ${(error as Error).message}` });
    }
  })
  .transform((dir) => path.resolve(dir));

/** A nix secret signing key file, as a mounted Secret: read once to check it and name its public key. */
const secretKeyFile = z
  .string()
  .regex(STORE_URL_SAFE, {
    error: 'expected an absolute path without spaces or any of ? & # %',
  })
  .transform((file, ctx) => {
    try {
      return { file, publicKey: publicKeyOf(readFileSync(file, 'utf8')) };
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code
        ? `cannot read it: ${(error as Error).message}`
        : `${(error as Error).message}; make one with \`nix key generate-secret --key-name NAME\``;
      ctx.addIssue({ code: 'custom', message: reason });
      return z.NEVER;
    }
  });

const envSchema = z
  .object({
    ...redisEnv(REDIS_USERS.builder),
    SEED_RECONCILER_ADDRESS: z
      .string()
      .regex(/^[^\s:]+:\d{1,5}$/, { error: 'expected HOST:PORT of the reconciler gRPC server' })
      .default('127.0.0.1:9090'),
    SEED_TLS_DIR: envVar.tlsDir(),
    SEED_TLS_RELOAD_SECONDS: envVar.tlsReloadSeconds(),
    SEED_BUILDER_API_TOKEN_FILE: envVar.tokenFile(),
    SEED_BUILDER_HOST: z.string().min(1).default('127.0.0.1'),
    SEED_BUILDER_PORT: envVar.port(8081),
    SEED_BUILDER_CONCURRENCY: envVar.positiveInt(availableParallelism()),
    SEED_CANCEL_SUPERSEDED: envVar.flag(true),
    SEED_NIX_BIN: z.string().min(1).default('nix'),
    SEED_NIX_CONF: z.string().min(1).default('/etc/seed/nix.conf'),
    SEED_NIX_STORE: z
      .string()
      .regex(/^(\/\S*|[a-z][a-z0-9+]*:\/\/\S*|auto|daemon|local)$/, {
        error: 'expected a chroot store folder (absolute path) or a nix store URL',
      })
      .optional(),
    SEED_BINARY_CACHE_DIR: writableDir.optional(),
    // A cache: a lost mirror costs one full fetch (the builder pod's /tmp is an emptyDir).
    SEED_HISTORY_DIR: writableDir.default(path.join(tmpdir(), 'seed-history')),
    SEED_BINARY_CACHE_SECRET_KEY_FILE: secretKeyFile.optional(),
    SEED_BINARY_CACHE_COMPRESSION: z.enum(['zstd', 'xz', 'none']).default('zstd'),
    SEED_PUBLISH_TIMEOUT_MS: envVar.positiveInt(30 * 60_000),
    SEED_KEEP_GENERATIONS: envVar.positiveInt(5),
    SEED_GC_ROOTS_DIR: writableDir.optional(),
    ...storeGcEnv(),
    SEED_EVAL_TIMEOUT_MS: envVar.positiveInt(5 * 60_000),
    SEED_BUILD_TIMEOUT_MS: envVar.positiveInt(60 * 60_000),
    SEED_NIX_OUTPUT_LIMIT_BYTES: envVar.positiveInt(DEFAULT_MAX_OUTPUT_BYTES),
    SEED_APPLY_DEADLINE_MS: envVar.positiveInt(30_000),
    SEED_APPLY_ATTEMPTS: envVar.positiveInt(6),
    SEED_APPLY_BACKOFF_MS: envVar.positiveInt(1_000),
    SEED_JOB_LOCK_MS: envVar.positiveInt(30_000),
    SEED_BUILD_LOG_BYTES: envVar.positiveInt(64 * 1024),
    SEED_SHUTDOWN_GRACE_MS: envVar.positiveInt(60_000),
    SEED_BUILDS_URL: z
      .url({ protocol: /^https?$/, error: 'expected the http(s) URL build records are read at' })
      .transform((url) => url.replace(/\/+$/, ''))
      .default('http://127.0.0.1:8081/builds'),
    SEED_FORGE_STATUS_ATTEMPTS: envVar.positiveInt(5),
    SEED_FORGE_STATUS_BACKOFF_MS: envVar.positiveInt(2_000),
    SEED_FORGE_STATUS_TIMEOUT_MS: envVar.positiveInt(10_000),
    SEED_FORGE_STATUS_QUEUE: envVar.positiveInt(1_000),
    SEED_LOG_LEVEL: envVar.logLevel(),
  })
  .superRefine((vars, ctx) => {
    if (
      vars.SEED_BINARY_CACHE_SECRET_KEY_FILE !== undefined &&
      vars.SEED_BINARY_CACHE_DIR === undefined
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['SEED_BINARY_CACHE_DIR'],
        message:
          'required with SEED_BINARY_CACHE_SECRET_KEY_FILE: the folder the signed cache is written to',
      });
    }
  });

/** The signed binary cache every built closure is published to; `off` says why there is none. */
export type BinaryCacheConfig =
  | {
      enabled: true;
      /** The cache folder (a `file://` binary cache), served read-only over HTTP. */
      dir: string;
      /** The secret key file (a mounted Secret); nix reads it, the builder never keeps it. */
      secretKeyFile: string;
      /** What nodes must trust (`trusted-public-keys`). */
      publicKey: string;
      compression: 'zstd' | 'xz' | 'none';
      publishTimeoutMs: number;
    }
  | { enabled: false; reason: string };

export interface BuilderConfig {
  /** `apiToken` guards the build records; the binary cache stays open (it is signed). */
  http: { host: string; port: number; apiToken: TokenFile };
  redis: RedisConnectionSettings;
  worker: {
    concurrency: number;
    /** How long a job (and its flake) stays locked to a worker that stopped answering. */
    lockMs: number;
    cancelSuperseded: boolean;
    shutdownGraceMs: number;
  };
  nix: {
    binary: string;
    confFile: string;
    /** `--store` of every nix call; nix's default store when undefined. */
    store?: string;
    evaluateTimeoutMs: number;
    buildTimeoutMs: number;
    /** What one nix command may print before it is killed (`output-limit`). */
    outputLimitBytes: number;
  };
  binaryCache: BinaryCacheConfig;
  reconciler: {
    address: string;
    /** The builder's client certificate (CN `builder`) and the platform CA. */
    tls: { files: TlsDirectory; reloadMs: number };
    deadlineMs: number;
    attempts: number;
    backoffMs: number;
  };
  /** How commit statuses are sent (each build's job says where). */
  forgeStatuses: ForgeStatusOptions;
  /** What garbage collection keeps, and when it runs (StoreKeeper, StoreGcSchedule). */
  gc: StoreGcTiming & {
    /** The out-links of each flake's last generations: indirect roots of the store. */
    rootsDir: string;
    keepGenerations: number;
    /** Longer than a build can take: unsealed roots this old are a dead process's. */
    unsealedMaxAgeMs: number;
  };
  /** The bare git mirrors of flakes, for the ancestry check (GitHistory). */
  history: { dir: string; timeoutMs: number };
  buildLogBytes: number;
  logLevel: string;
}

export function loadBuilderConfig(env: NodeJS.ProcessEnv = process.env): BuilderConfig {
  const vars = parseEnv(envSchema, env);
  return {
    http: {
      host: vars.SEED_BUILDER_HOST,
      port: vars.SEED_BUILDER_PORT,
      apiToken: vars.SEED_BUILDER_API_TOKEN_FILE,
    },
    redis: redisSettings(vars),
    worker: {
      concurrency: vars.SEED_BUILDER_CONCURRENCY,
      lockMs: vars.SEED_JOB_LOCK_MS,
      cancelSuperseded: vars.SEED_CANCEL_SUPERSEDED,
      shutdownGraceMs: vars.SEED_SHUTDOWN_GRACE_MS,
    },
    nix: {
      binary: vars.SEED_NIX_BIN,
      confFile: vars.SEED_NIX_CONF,
      store: vars.SEED_NIX_STORE,
      evaluateTimeoutMs: vars.SEED_EVAL_TIMEOUT_MS,
      buildTimeoutMs: vars.SEED_BUILD_TIMEOUT_MS,
      outputLimitBytes: vars.SEED_NIX_OUTPUT_LIMIT_BYTES,
    },
    reconciler: {
      address: vars.SEED_RECONCILER_ADDRESS,
      tls: { files: vars.SEED_TLS_DIR, reloadMs: vars.SEED_TLS_RELOAD_SECONDS * 1000 },
      deadlineMs: vars.SEED_APPLY_DEADLINE_MS,
      attempts: vars.SEED_APPLY_ATTEMPTS,
      backoffMs: vars.SEED_APPLY_BACKOFF_MS,
    },
    binaryCache:
      vars.SEED_BINARY_CACHE_SECRET_KEY_FILE === undefined ||
      vars.SEED_BINARY_CACHE_DIR === undefined
        ? {
            enabled: false,
            reason:
              'SEED_BINARY_CACHE_SECRET_KEY_FILE is not set: built closures are not published, so only a node sharing this nix store can run them',
          }
        : {
            enabled: true,
            dir: vars.SEED_BINARY_CACHE_DIR,
            secretKeyFile: vars.SEED_BINARY_CACHE_SECRET_KEY_FILE.file,
            publicKey: vars.SEED_BINARY_CACHE_SECRET_KEY_FILE.publicKey,
            compression: vars.SEED_BINARY_CACHE_COMPRESSION,
            publishTimeoutMs: vars.SEED_PUBLISH_TIMEOUT_MS,
          },
    forgeStatuses: {
      buildsUrl: vars.SEED_BUILDS_URL,
      attempts: vars.SEED_FORGE_STATUS_ATTEMPTS,
      backoffMs: vars.SEED_FORGE_STATUS_BACKOFF_MS,
      timeoutMs: vars.SEED_FORGE_STATUS_TIMEOUT_MS,
      capacity: vars.SEED_FORGE_STATUS_QUEUE,
    },
    gc: {
      // Beside the cache by default: the roots say what the cache keeps, and a cache that
      // outlived its roots would otherwise be emptied at the next collection.
      rootsDir:
        vars.SEED_GC_ROOTS_DIR ??
        path.join(vars.SEED_BINARY_CACHE_DIR ?? path.join(tmpdir(), 'seed'), 'gc-roots'),
      keepGenerations: vars.SEED_KEEP_GENERATIONS,
      unsealedMaxAgeMs:
        2 * vars.SEED_EVAL_TIMEOUT_MS +
        vars.SEED_BUILD_TIMEOUT_MS +
        2 * vars.SEED_PUBLISH_TIMEOUT_MS,
      ...storeGcTiming(vars),
    },
    history: { dir: vars.SEED_HISTORY_DIR, timeoutMs: vars.SEED_EVAL_TIMEOUT_MS },
    buildLogBytes: vars.SEED_BUILD_LOG_BYTES,
    logLevel: vars.SEED_LOG_LEVEL,
  };
}
