import { DEFAULT_SHOOT_POOL_PORT } from '@seed/k8s-model';
import type { TlsDirectory } from '@seed/contracts';
import { envVar, parseEnv } from '@seed/service-kit';
import { z } from 'zod';

const envSchema = z.object({
  SEED_KUBECONFIG: z.string().min(1).optional(),
  SEED_RECONCILER_HOST: z.string().min(1).default('127.0.0.1'),
  SEED_RECONCILER_GRPC_PORT: envVar.port(9090),
  SEED_RECONCILER_HTTP_PORT: envVar.port(8082),
  SEED_TLS_DIR: envVar.tlsDir(),
  SEED_TLS_RELOAD_SECONDS: envVar.tlsReloadSeconds(),
  SEED_RECONCILER_WORKERS: envVar.positiveInt(4),
  SEED_RESYNC_SECONDS: envVar.positiveInt(300),
  SEED_SHOOT_POOL_PORT: envVar.port(DEFAULT_SHOOT_POOL_PORT),
  SEED_LOG_LEVEL: envVar.logLevel(),
});

export interface ReconcilerConfig {
  /** A kubeconfig file; unset means in-cluster or $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  host: string;
  grpcPort: number;
  /** The reconciler's server certificate and the platform CA its callers must come from. */
  tls: { files: TlsDirectory; reloadMs: number };
  httpPort: number;
  workers: number;
  resyncMs: number;
  shootPoolPort: number;
  logLevel: string;
}

export function loadReconcilerConfig(env: NodeJS.ProcessEnv = process.env): ReconcilerConfig {
  const vars = parseEnv(envSchema, env);
  return {
    kubeconfig: vars.SEED_KUBECONFIG,
    host: vars.SEED_RECONCILER_HOST,
    grpcPort: vars.SEED_RECONCILER_GRPC_PORT,
    tls: { files: vars.SEED_TLS_DIR, reloadMs: vars.SEED_TLS_RELOAD_SECONDS * 1000 },
    httpPort: vars.SEED_RECONCILER_HTTP_PORT,
    workers: vars.SEED_RECONCILER_WORKERS,
    resyncMs: vars.SEED_RESYNC_SECONDS * 1000,
    shootPoolPort: vars.SEED_SHOOT_POOL_PORT,
    logLevel: vars.SEED_LOG_LEVEL,
  };
}
