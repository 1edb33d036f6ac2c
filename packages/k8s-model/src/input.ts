import type { FlakeQuota, SeedMeta } from '@seed/contracts';

/** One `seeds.<name>` of a built flake revision: the reconciler's only input per instance. */
export interface SeedInstance {
  name: string;
  /** The evaluated meta, already validated by `parseSeedMeta` from `@seed/contracts`. */
  meta: SeedMeta;
  /** Store path of `seeds.<name>.image`, e.g. `/nix/store/<hash>-nixos-image-web.tar`. */
  image: string;
}

/** The flake a generation belongs to; recorded once, on its Namespace (and `seed-state`). */
export interface GenerationContext {
  /** The flake as registered (not pinned). */
  flakeUri: string;
  /** The flake's namespace, `deriveNamespace(flakeUri)` from `@seed/contracts`. */
  namespace: string;
  /** The revision the generation was built from. */
  commit: string;
  /** `generationHash(...)` from `@seed/contracts`. */
  generation: string;
}

export interface GenerationInput extends GenerationContext {
  instances: readonly SeedInstance[];
  /** The flake's caps from the registry; default `DEFAULT_FLAKE_QUOTA` of `@seed/contracts`. */
  quota?: FlakeQuota;
}

/**
 * Where the shoot pool listens on every node unless configured otherwise. apps/shoot-pool
 * runs one per node on the host network, so instances reach it at their node's IP.
 */
export const DEFAULT_SHOOT_POOL_PORT = 7070;

/** Platform settings that are not part of a flake. */
export interface RenderOptions {
  /** Port of the per-node shoot pool in `SEED_SHOOT_URL`; default `DEFAULT_SHOOT_POOL_PORT`. */
  shootPoolPort?: number;
  /** The cluster's address ranges and DNS, for NetworkPolicies; default `DEFAULT_NETWORK`. */
  network?: ClusterNetwork;
}

/**
 * Where the cluster's own addresses are, so a tenant's egress to "the internet" leaves
 * them out, and where its DNS answers. CIDRs of either family; each family's internet is
 * `0.0.0.0/0` or `::/0` less every range given here of that family.
 */
export interface ClusterNetwork {
  podCidrs: readonly string[];
  serviceCidrs: readonly string[];
  /** The nodes' own addresses: the kubelet, the API server, the shoot pool live there. */
  nodeCidrs: readonly string[];
  clusterDns: ClusterDns;
}

/**
 * The cluster DNS as a NetworkPolicy sees it: its pods (CoreDNS in `kube-system`), and/or
 * addresses outside the pod network (a node-local cache, a DNS server on the host).
 */
export interface ClusterDns {
  namespace?: string;
  podLabels?: Readonly<Record<string, string>>;
  cidrs?: readonly string[];
}

/**
 * k3s's defaults (pods 10.42.0.0/16, Services 10.43.0.0/16, CoreDNS labelled
 * `k8s-app=kube-dns` in kube-system). Node addresses are not known in advance: every
 * private range stands for them, so a cluster that does not say where its nodes are
 * keeps tenants off every private network rather than off none.
 */
export const DEFAULT_NETWORK: ClusterNetwork = {
  podCidrs: ['10.42.0.0/16'],
  serviceCidrs: ['10.43.0.0/16'],
  nodeCidrs: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  clusterDns: { namespace: 'kube-system', podLabels: { 'k8s-app': 'kube-dns' } },
};
