// Generations as the builder sends them: every instance exposes one HTTP port and has one
// volume, so it renders a PersistentVolumeClaim, a Deployment, a Service and a
// NetworkPolicy (its exposed port).
import {
  DEFAULT_FLAKE_QUOTA,
  SIZE_TIERS,
  deriveNamespace,
  generationHash,
  type ApplyGenerationRequest,
  type SeedMeta,
} from '@seed/contracts';

/** Objects the reconciler writes per instance (claim, Deployment, Service, NetworkPolicy). */
export const OBJECTS_PER_INSTANCE = 4;
/**
 * Objects per flake besides its instances: the Namespace, the state ConfigMap, the five
 * NetworkPolicies of the flake, its ResourceQuota and its LimitRange.
 */
export const OBJECTS_PER_FLAKE = 9;

function meta(name: string): SeedMeta {
  return {
    name,
    system: 'x86_64-linux',
    size: 's',
    resources: { ...SIZE_TIERS.s },
    expose: { http: { port: 8080, protocol: 'http' } },
    storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
    connect: {},
    rollout: 'recreate',
    shoot: { enable: false },
  };
}

/** A request with the fields the bench reads set. */
export interface Generation extends ApplyGenerationRequest {
  flakeUri: string;
  namespace: string;
}

/**
 * A generation of `instances` instances of `flakeUri`, built from commit number `build`.
 * The first `rebuilt` instances (all by default) get that build's image, a store path of
 * its own, so their Deployments change; the others keep build 0's image.
 */
export function generation(
  flakeUri: string,
  instances: number,
  build = 0,
  rebuilt = instances,
): Generation {
  const seeds = Array.from({ length: instances }, (_, index) => {
    const name = `app-${String(index).padStart(3, '0')}`;
    const hash = String(index < rebuilt ? build : 0).padStart(32, '0');
    return { name, meta: meta(name), image: `/nix/store/${hash}-seed-${name}-image` };
  });
  return {
    flakeUri,
    namespace: deriveNamespace(flakeUri),
    revision: build.toString(16).padStart(40, 'a'),
    generation: generationHash(seeds),
    // Its operator's caps: the largest flakes here (100 instances) are above Seed's meta
    // limit of 64 per flake, which the builder, not the reconciler, enforces, and the
    // default caps (sized by that limit) would refuse them.
    quota: {
      ...DEFAULT_FLAKE_QUOTA,
      services: Math.max(DEFAULT_FLAKE_QUOTA.services, instances),
    },
    instances: seeds.map((seed) => ({
      name: seed.name,
      metaJson: JSON.stringify(seed.meta),
      image: seed.image,
    })),
  };
}
