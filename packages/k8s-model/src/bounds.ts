import {
  INSTANCE_POD,
  META_LIMITS,
  SIZE_TIERS,
  canonicalFlakeQuota,
  canonicalQuantity,
  quotaExcess,
  type FlakeQuota,
} from '@seed/contracts';
import { ModelError } from './errors';
import type { GenerationContext, SeedInstance } from './input';
import { flakeObjectName, LABEL_MANAGED_BY, MANAGED_BY_SEED, namespaceName } from './names';
import { withSortedKeys, type SeedLimitRange, type SeedResourceQuota } from './objects';

/**
 * The flake's bounds, enforced by the API server's admission for everything created in
 * its namespace, Seed's objects and anything else alike:
 *
 * - ResourceQuota `seed.quota`: the operator's caps (the registry's `quota`) on what the
 *   pods request (the `kata` overhead included), on the claims' total size, and on the
 *   number of pods, claims and Services.
 * - LimitRange `seed.limits`: a container that names no requests gets the smallest tier's,
 *   so it counts against the quota like an instance; no claim is larger than Seed's limit
 *   per volume. It sets no limits, and no maximum (a maximum would demand limits): Kata
 *   sizes the VM from the pod's annotations, and limits would be hot-plugged on top.
 *
 * Like the flake's NetworkPolicies they carry no generation or instance, so a push that
 * keeps the caps never rewrites them.
 */
export function renderFlakeBounds(
  context: GenerationContext,
  quota: FlakeQuota,
): [SeedResourceQuota, SeedLimitRange] {
  const caps = canonicalFlakeQuota(quota);
  const metadata = (purpose: string, kind: string) => ({
    name: flakeObjectName(purpose, kind),
    namespace: namespaceName(context.namespace),
    labels: { [LABEL_MANAGED_BY]: MANAGED_BY_SEED },
  });
  const smallest = Object.values(SIZE_TIERS).sort((a, b) => a.memory - b.memory)[0]!;
  return [
    withSortedKeys({
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: metadata('quota', 'ResourceQuota'),
      spec: {
        hard: {
          'requests.cpu': caps.cpu,
          'requests.memory': caps.memory,
          'requests.storage': caps.storage,
          pods: String(caps.pods),
          persistentvolumeclaims: String(caps.persistentvolumeclaims),
          services: String(caps.services),
        },
      },
    }),
    withSortedKeys({
      apiVersion: 'v1',
      kind: 'LimitRange',
      metadata: metadata('limits', 'LimitRange'),
      spec: {
        limits: [
          {
            type: 'Container',
            defaultRequest: {
              cpu: canonicalQuantity(`${smallest.vcpus * INSTANCE_POD.cpuMillisPerVcpu}m`)!,
              memory: canonicalQuantity(`${smallest.memory}Mi`)!,
            },
          },
          {
            type: 'PersistentVolumeClaim',
            max: { storage: canonicalQuantity(`${META_LIMITS.storageBytes / 2 ** 40}Ti`)! },
          },
        ],
      },
    }),
  ];
}

/**
 * Refuses, before anything is written, a generation whose instances would not fit the
 * flake's caps: the API server would otherwise refuse their pods one by one, long after
 * the push was accepted.
 */
export function checkWithinQuota(instances: readonly SeedInstance[], quota: FlakeQuota): void {
  const excess = quotaExcess(
    quota,
    instances.map((instance) => instance.meta),
  );
  if (excess.length > 0)
    throw new ModelError({
      field: 'quota',
      reason: `exceeds the flake's caps: ${excess.join('; ')}`,
    });
}
