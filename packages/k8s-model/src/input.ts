import type { SeedMeta } from '@seed/contracts';

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
}
