import { describe, expect, it } from '@jest/globals';
import { DEFAULT_FLAKE_QUOTA, META_LIMITS, SIZE_TIERS, type FlakeQuota } from '@seed/contracts';
import { renderGeneration } from '../src';
import { generation, instance } from './fixtures';
import { modelErrorOf, objectOf } from './helpers';

const caps: FlakeQuota = {
  cpu: '2',
  memory: '4096Mi',
  storage: '10Gi',
  pods: 4,
  persistentvolumeclaims: 2,
  services: 1,
};

describe("a flake's bounds", () => {
  it("are its registry caps, in the API server's form, with the managed-by label", () => {
    const objects = renderGeneration({ ...generation([instance('web')]), quota: caps });
    const quota = objectOf(objects, 'ResourceQuota', 'seed.quota');
    expect(quota.metadata).toEqual({
      name: 'seed.quota',
      namespace: 's-abcdefghijkl',
      labels: { 'seed.loom.farm/managed-by': 'seed' },
    });
    expect(quota.spec).toEqual({
      hard: {
        'requests.cpu': '2',
        'requests.memory': '4Gi',
        'requests.storage': '10Gi',
        pods: '4',
        persistentvolumeclaims: '2',
        services: '1',
      },
    });
  });

  it('give a container without requests the smallest tier, and cap a claim at Seed’s volume limit', () => {
    const limits = objectOf(renderGeneration(generation([])), 'LimitRange', 'seed.limits');
    expect(limits.spec).toEqual({
      limits: [
        { type: 'Container', defaultRequest: { cpu: '250m', memory: '512Mi' } },
        { type: 'PersistentVolumeClaim', max: { storage: '16Ti' } },
      ],
    });
  });

  it('are the defaults without registry caps', () => {
    const quota = objectOf(renderGeneration(generation([])), 'ResourceQuota', 'seed.quota');
    expect(quota.spec?.hard).toEqual({
      'requests.cpu': DEFAULT_FLAKE_QUOTA.cpu,
      'requests.memory': DEFAULT_FLAKE_QUOTA.memory,
      'requests.storage': DEFAULT_FLAKE_QUOTA.storage,
      pods: String(DEFAULT_FLAKE_QUOTA.pods),
      persistentvolumeclaims: String(DEFAULT_FLAKE_QUOTA.persistentvolumeclaims),
      services: String(DEFAULT_FLAKE_QUOTA.services),
    });
  });

  it('default to what the largest flake Seed’s meta limits accept needs, so it renders', () => {
    const largest = Array.from({ length: META_LIMITS.instancesPerFlake }, (_, index) =>
      instance(`i${index}`, {
        size: 'xl',
        resources: { ...SIZE_TIERS.xl },
        rollout: 'rolling',
        expose: { http: { port: 80, protocol: 'http' } },
        storage: Object.fromEntries(
          Array.from({ length: META_LIMITS.storageEntries }, (_, key) => [
            `v${key}`,
            { size: '16Ti', mountPoint: `/v${key}` },
          ]),
        ),
      }),
    );
    expect(() => renderGeneration(generation(largest))).not.toThrow();
  });
});

describe('a generation beyond its caps', () => {
  // Two `s` instances: 2 × (250m + 250m overhead) = 1 core, 2 × (1024 + 160) MiB, two
  // claims of 9Gi in all, two Services.
  const http = { http: { port: 80, protocol: 'http' as const } };
  const two = [
    instance('web', { expose: http, storage: { data: { size: '8Gi', mountPoint: '/data' } } }),
    instance('worker', { expose: http, storage: { cache: { size: '1Gi', mountPoint: '/c' } } }),
  ];
  const fitting: FlakeQuota = { ...caps, services: 2 };

  it('fits when within every cap', () => {
    expect(() => renderGeneration({ ...generation(two), quota: fitting })).not.toThrow();
  });

  it.each<[string, Partial<FlakeQuota>, string]>([
    ['cpu', { cpu: '900m' }, "quota.cpu: the instances request 1, above the flake's cap of 900m"],
    [
      'memory',
      { memory: '2Gi' },
      "quota.memory: the instances request 2368Mi, above the flake's cap of 2Gi",
    ],
    [
      'storage',
      { storage: '4Gi' },
      "quota.storage: the instances claim 9Gi, above the flake's cap of 4Gi",
    ],
    ['pods', { pods: 1 }, "quota.pods: the instances request 2, above the flake's cap of 1"],
    [
      'persistentvolumeclaims',
      { persistentvolumeclaims: 1 },
      "quota.persistentvolumeclaims: the instances request 2, above the flake's cap of 1",
    ],
    [
      'services',
      { services: 1 },
      "quota.services: the instances request 2, above the flake's cap of 1",
    ],
  ])('is refused before rendering, naming the %s cap', (_cap, cap, reason) => {
    expect(
      modelErrorOf(() => renderGeneration({ ...generation(two), quota: { ...fitting, ...cap } })),
    ).toEqual({
      instance: undefined,
      field: 'quota',
      reason: `exceeds the flake's caps: ${reason}`,
    });
  });

  it('counts a rolling instance twice: it runs two pods while it rolls', () => {
    const rolling = [instance('web', { rollout: 'rolling' })];
    expect(
      modelErrorOf(() => renderGeneration({ ...generation(rolling), quota: { ...caps, pods: 1 } }))
        .reason,
    ).toBe(
      "exceeds the flake's caps: quota.pods: the instances request 2 at their peak (a rolling instance runs two pods while it rolls), above the flake's cap of 1",
    );
  });

  it('names every cap it passes', () => {
    const reason = modelErrorOf(() =>
      renderGeneration({ ...generation(two), quota: { ...fitting, pods: 1, cpu: '1m' } }),
    ).reason;
    expect(reason).toContain('quota.cpu:');
    expect(reason).toContain('quota.pods:');
    expect(reason).not.toContain('quota.memory');
  });
});
