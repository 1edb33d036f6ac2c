import { describe, expect, it } from '@jest/globals';
import { DEFAULT_FLAKE_QUOTA, buildJobSchema, canonicalQuantity, flakeQuotaSchema } from '../src';

describe('canonicalQuantity', () => {
  it.each([
    ['1024Mi', '1Gi'],
    ['1.5Gi', '1536Mi'],
    ['0.5', '500m'],
    ['1000m', '1'],
    ['2000', '2k'],
    ['500M', '500M'],
    ['1536', '1536'],
    ['8Pi', '8Pi'],
  ])('writes %s as the API server stores it: %s', (text, canonical) => {
    expect(canonicalQuantity(text)).toBe(canonical);
  });

  it.each(['1e3', '-1', '1 Gi', '0.0001', 'lots', ''])('refuses %j', (text) => {
    expect(canonicalQuantity(text)).toBeUndefined();
  });
});

describe('the default quota', () => {
  it("is what 64 rolling xl instances with 8 volumes of 16Ti each need: Seed's meta limits", () => {
    // 128 pods × (8 vCPU × 250m + 250m) and × (8192 + 160) MiB.
    expect(DEFAULT_FLAKE_QUOTA).toEqual({
      cpu: '288',
      memory: '1044Gi',
      storage: '8Pi',
      pods: 128,
      persistentvolumeclaims: 512,
      services: 64,
    });
    expect(flakeQuotaSchema.safeParse(DEFAULT_FLAKE_QUOTA).success).toBe(true);
  });

  it('travels with a build job, which older webhooks queued without it', () => {
    const job = {
      flake: 'github:acme/app',
      commit: 'a'.repeat(40),
      ref: 'refs/heads/main',
      forge: 'github',
      deliveryId: 'd',
      receivedAt: new Date(0).toISOString(),
    };
    expect(buildJobSchema.safeParse(job).success).toBe(true);
    expect(buildJobSchema.safeParse({ ...job, quota: DEFAULT_FLAKE_QUOTA }).success).toBe(true);
    expect(buildJobSchema.safeParse({ ...job, quota: { cpu: '1' } }).success).toBe(false);
  });
});
