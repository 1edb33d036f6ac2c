import { DEFAULT_NETWORK, DEFAULT_SHOOT_POOL_PORT, type ClusterNetwork } from '@seed/k8s-model';
import type { TlsDirectory } from '@seed/contracts';
import { envVar, parseEnv } from '@seed/service-kit';
import { z } from 'zod';

/** Comma-separated CIDRs; the model checks each range further before rendering. */
const cidrs = (fallback: readonly string[]) =>
  z
    .string()
    .default(fallback.join(','))
    .transform((list) => list.split(',').map((cidr) => cidr.trim()))
    .refine((list) => list.every((cidr) => /^[0-9a-fA-F:.]+\/\d{1,3}$/.test(cidr)), {
      error: 'expected comma-separated CIDRs (10.42.0.0/16,fd00::/64)',
    });

const envSchema = z.object({
  SEED_KUBECONFIG: z.string().min(1).optional(),
  SEED_RECONCILER_HOST: z.string().min(1).default('127.0.0.1'),
  SEED_RECONCILER_GRPC_PORT: envVar.port(9090),
  SEED_RECONCILER_HTTP_PORT: envVar.port(8082),
  SEED_TLS_DIR: envVar.tlsDir(),
  SEED_TLS_RELOAD_SECONDS: envVar.tlsReloadSeconds(),
  SEED_RECONCILER_WORKERS: envVar.positiveInt(4),
  SEED_RESYNC_SECONDS: envVar.positiveInt(300),
  // How often SeedFlake statuses are brought up to date (rollouts move between pushes);
  // 0 leaves SeedFlakes alone (a cluster without the CRD).
  SEED_SEEDFLAKE_STATUS_SECONDS: envVar.nonNegativeInt(10),
  // A deleted SeedFlake's instances run on this long (a deletion by mistake is cheap).
  SEED_REMOVAL_GRACE_SECONDS: envVar.nonNegativeInt(300),
  SEED_SHOOT_POOL_PORT: envVar.port(DEFAULT_SHOOT_POOL_PORT),
  SEED_LEASE_NAMESPACE: z.string().min(1).optional(),
  SEED_LEASE_NAME: z.string().min(1).default('seed-reconciler'),
  SEED_LEASE_SECONDS: envVar.positiveInt(15),
  // This replica's pod (the downward API's metadata.name), in the Lease's namespace: the
  // leader labels it, so a Service that selects the label sends calls to the leader.
  SEED_POD_NAME: z.string().min(1).optional(),
  SEED_POD_CIDRS: cidrs(DEFAULT_NETWORK.podCidrs),
  SEED_SERVICE_CIDRS: cidrs(DEFAULT_NETWORK.serviceCidrs),
  SEED_NODE_CIDRS: cidrs(DEFAULT_NETWORK.nodeCidrs),
  /** Where the cluster DNS answers when it is not CoreDNS's pods in kube-system. */
  SEED_CLUSTER_DNS_CIDRS: cidrs([]).optional(),
  SEED_LOG_LEVEL: envVar.logLevel(),
});

export interface ReconcilerConfig {
  /** A kubeconfig file; unset means in-cluster or $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  /** Probes and metrics. */
  http: { host: string; port: number };
  /**
   * The builder's and the CLI's calls; `tls`: the reconciler's server certificate and the
   * platform CA its callers must come from.
   */
  grpc: { host: string; port: number; tls: { files: TlsDirectory; reloadMs: number } };
  workers: number;
  resyncMs: number;
  /** How often SeedFlake statuses are refreshed; 0: never (nor removals). */
  seedFlakeStatusMs: number;
  /** How long a deleted SeedFlake's flake runs on before it is removed. */
  removalGraceMs: number;
  shootPoolPort: number;
  /**
   * Leader election on a Lease, for running several replicas; unset: this replica always
   * leads (one replica, the local stack).
   */
  lease?: {
    namespace: string;
    name: string;
    durationMs: number;
    /** This replica's pod, which carries `LEADER_LABEL` while it leads. */
    podName?: string;
  };
  /** The cluster's address ranges and DNS, which tenants' NetworkPolicies keep them from. */
  network: ClusterNetwork;
  logLevel: string;
}

export function loadReconcilerConfig(env: NodeJS.ProcessEnv = process.env): ReconcilerConfig {
  const vars = parseEnv(envSchema, env);
  return {
    kubeconfig: vars.SEED_KUBECONFIG,
    http: { host: vars.SEED_RECONCILER_HOST, port: vars.SEED_RECONCILER_HTTP_PORT },
    grpc: {
      host: vars.SEED_RECONCILER_HOST,
      port: vars.SEED_RECONCILER_GRPC_PORT,
      tls: { files: vars.SEED_TLS_DIR, reloadMs: vars.SEED_TLS_RELOAD_SECONDS * 1000 },
    },
    workers: vars.SEED_RECONCILER_WORKERS,
    resyncMs: vars.SEED_RESYNC_SECONDS * 1000,
    seedFlakeStatusMs: vars.SEED_SEEDFLAKE_STATUS_SECONDS * 1000,
    removalGraceMs: vars.SEED_REMOVAL_GRACE_SECONDS * 1000,
    shootPoolPort: vars.SEED_SHOOT_POOL_PORT,
    lease: vars.SEED_LEASE_NAMESPACE
      ? {
          namespace: vars.SEED_LEASE_NAMESPACE,
          name: vars.SEED_LEASE_NAME,
          durationMs: vars.SEED_LEASE_SECONDS * 1000,
          ...(vars.SEED_POD_NAME !== undefined && { podName: vars.SEED_POD_NAME }),
        }
      : undefined,
    network: {
      podCidrs: vars.SEED_POD_CIDRS,
      serviceCidrs: vars.SEED_SERVICE_CIDRS,
      nodeCidrs: vars.SEED_NODE_CIDRS,
      clusterDns: vars.SEED_CLUSTER_DNS_CIDRS
        ? { cidrs: vars.SEED_CLUSTER_DNS_CIDRS }
        : DEFAULT_NETWORK.clusterDns,
    },
    logLevel: vars.SEED_LOG_LEVEL,
  };
}
