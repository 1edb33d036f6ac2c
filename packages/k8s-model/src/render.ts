import { DEFAULT_FLAKE_QUOTA } from '@seed/contracts';
import { checkWithinQuota, renderFlakeBounds } from './bounds';
import { renderDeployment } from './deployment';
import { ModelError } from './errors';
import type { GenerationContext, GenerationInput, RenderOptions, SeedInstance } from './input';
import { renderNamespace } from './namespace';
import { checkGeneration, instanceObjectName, pvcName } from './names';
import { renderFlakeNetworkPolicies, renderInstanceNetworkPolicy } from './network-policy';
import { renderTpmRequest } from './tpm';
import { byName, KINDS_IN_APPLY_ORDER, type SeedObject, type SeedObjectKind } from './objects';
import { renderService } from './service';
import { renderPersistentVolumeClaims } from './volume';

/**
 * Every object of a generation, in the order they are applied: the Namespace, its bounds
 * and NetworkPolicies (before any pod runs), the claims (a pod waits for its claims), the
 * Deployments, the Services. Instances go by
 * name and every object's keys are sorted, so the same input gives the same JSON bytes
 * whatever order it came in. Throws a ModelError, before anything could be applied, when
 * a name would be refused, two things would share one, or the instances exceed the
 * flake's caps.
 */
export function renderGeneration(
  input: GenerationInput,
  options: RenderOptions = {},
): SeedObject[] {
  const context: GenerationContext = {
    flakeUri: input.flakeUri,
    namespace: input.namespace,
    commit: input.commit,
    generation: input.generation,
  };
  // No object carries the generation any more (seed-state records it, through
  // flakeStamp), but a malformed one must still fail before anything is applied.
  checkGeneration(input.generation);
  const instances = [...input.instances].sort((a, b) => byName(a.name, b.name));
  checkInstanceNames(instances);
  checkClaimsDistinct(instances);
  const quota = input.quota ?? DEFAULT_FLAKE_QUOTA;
  checkWithinQuota(instances, quota);

  // Each renderer returns its object with sorted keys.
  return [
    renderNamespace(context),
    ...renderFlakeBounds(context, quota),
    ...renderFlakeNetworkPolicies(context, options),
    ...instances.flatMap(
      (instance) => renderInstanceNetworkPolicy(context, instance, options) ?? [],
    ),
    ...instances.flatMap((instance) => renderTpmRequest(context, instance) ?? []),
    ...instances.flatMap((instance) => renderPersistentVolumeClaims(context, instance)),
    ...instances.map((instance) => renderDeployment(context, instance, options)),
    ...instances.flatMap((instance) => renderService(context, instance) ?? []),
  ];
}

/** Names by kind, sorted: what a prune keeps (Seed never prunes claims anyway). */
export type DesiredNames = Record<SeedObjectKind, string[]>;

export function desiredNames(objects: readonly SeedObject[]): DesiredNames {
  const names = Object.fromEntries(
    KINDS_IN_APPLY_ORDER.map((kind) => [kind, [] as string[]]),
  ) as DesiredNames;
  for (const object of objects) names[object.kind].push(object.metadata.name);
  for (const kind of KINDS_IN_APPLY_ORDER) names[kind].sort(byName);
  return names;
}

/** Each instance is named validly, once, and as its meta says. */
function checkInstanceNames(instances: readonly SeedInstance[]): void {
  const seen = new Set<string>();
  for (const instance of instances) {
    const name = instanceObjectName(instance.name);
    if (instance.meta.name !== name) {
      throw new ModelError({
        instance: name,
        field: 'meta.name',
        reason: `"${instance.meta.name}" differs from the instance name "${name}"`,
      });
    }
    if (seen.has(name)) {
      throw new ModelError({ instance: name, field: 'name', reason: 'appears more than once' });
    }
    seen.add(name);
  }
}

/**
 * `seed-<name>-<key>` is ambiguous across instances (`a` + `b-c` and `a-b` + `c`), and two
 * instances sharing one claim would share tenant data: refuse it.
 */
function checkClaimsDistinct(instances: readonly SeedInstance[]): void {
  const ownerByClaim = new Map<string, string>();
  for (const instance of instances) {
    for (const key of Object.keys(instance.meta.storage).sort(byName)) {
      const claim = pvcName(instance.name, key);
      const owner = ownerByClaim.get(claim);
      if (owner !== undefined) {
        throw new ModelError({
          instance: instance.name,
          field: `meta.storage.${key}`,
          reason: `PersistentVolumeClaim "${claim}" is already the claim of ${owner}`,
        });
      }
      ownerByClaim.set(claim, `seeds.${instance.name}.meta.storage.${key}`);
    }
  }
}
