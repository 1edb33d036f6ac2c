import type { SeedMeta } from '@seed/contracts';
import type { GenerationInput, SeedInstance } from '../src';

/** The meta of ARCHITECTURE.md's `seeds.<name>.meta` example. */
export const webMeta: SeedMeta = {
  name: 'web',
  system: 'x86_64-linux',
  size: 's',
  resources: { vcpus: 1, memory: 1024 },
  expose: { http: { port: 8080, protocol: 'http' } },
  storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
  connect: { db: { service: 'postgres', port: 5432 } },
  rollout: 'recreate',
  shoot: { enable: false },
};

export const webImage = '/nix/store/0c8r4bx1qvdph5qk3d1mz7w2y9h6l0vz-nixos-image-web.tar';

/**
 * ARCHITECTURE.md's example as one generation: its flake, the namespace it derives
 * (`deriveNamespace`), and `generationHash` of `web` with this image, both as computed by
 * packages/contracts.
 */
export const architectureExample: GenerationInput = {
  flakeUri: 'github:loomtex/seed',
  namespace: 's-gaydazldmnsg',
  commit: '4f0c3b9d2e7a61f58c0b1d2e3f4a5b6c7d8e9f01',
  generation: 'c6cbc93ef820',
  instances: [{ name: 'web', meta: webMeta, image: webImage }],
};

/** A bare instance: nothing exposed, stored or connected; override what a test needs. */
export function instance(name: string, meta: Partial<SeedMeta> = {}): SeedInstance {
  return {
    name,
    image: `/nix/store/${'a'.repeat(32)}-nixos-image-${name}.tar`,
    meta: {
      name,
      system: 'x86_64-linux',
      size: 's',
      resources: { vcpus: 1, memory: 1024 },
      expose: {},
      storage: {},
      connect: {},
      rollout: 'recreate',
      shoot: { enable: false },
      ...meta,
    },
  };
}

/** A flake that uses every option, to exercise every object kind at once. */
export const everything: SeedInstance[] = [
  { name: 'web', meta: webMeta, image: webImage },
  instance('postgres', {
    size: 'm',
    resources: { vcpus: 2, memory: 2048 },
    expose: { pg: { port: 5432, protocol: 'tcp' } },
    storage: { data: { size: '10Gi', mountPoint: '/var/lib/postgresql' } },
    rollout: 'rolling',
  }),
  instance('resolver', {
    expose: { dns: { port: 53, protocol: 'dns' }, metrics: { port: 9153, protocol: 'http' } },
    shoot: { enable: true },
  }),
  instance('worker', { connect: { 'job-queue': { service: 'redis', port: null } } }),
];

export function generation(
  instances: SeedInstance[],
  overrides: Partial<Omit<GenerationInput, 'instances'>> = {},
): GenerationInput {
  return {
    flakeUri: 'github:example/flake',
    namespace: 's-abcdefghijkl',
    commit: '0123456789abcdef0123456789abcdef01234567',
    generation: '0123456789ab',
    instances,
    ...overrides,
  };
}
