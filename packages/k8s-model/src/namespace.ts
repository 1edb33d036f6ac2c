import type { GenerationContext } from './input';
import { flakeOwnerStamp, namespaceName } from './names';
import { withSortedKeys, type SeedNamespace } from './objects';

/** The flake's Namespace: Seed's, and stamped with the flake it holds. */
export function renderNamespace(context: GenerationContext): SeedNamespace {
  return withSortedKeys({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: namespaceName(context.namespace), ...flakeOwnerStamp(context.flakeUri) },
  });
}
