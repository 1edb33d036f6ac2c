import { SIZE_TIERS, type SeedMeta } from '@seed/contracts';

/** A valid meta of a small instance, as the Nix library writes it; `overrides` win. */
export function seedMeta(name: string, overrides: Partial<SeedMeta> = {}): SeedMeta {
  const size = overrides.size ?? 's';
  return {
    name,
    system: 'x86_64-linux',
    size,
    resources: { ...SIZE_TIERS[size] },
    expose: {},
    storage: {},
    connect: {},
    rollout: 'recreate',
    shoot: { enable: false },
    ...overrides,
  };
}
