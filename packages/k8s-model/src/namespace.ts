import type { GenerationContext } from './input';
import { flakeStamp, namespaceName } from './names';
import { withSortedKeys, type SeedNamespace } from './objects';

/** The flake's Namespace: Seed's, and stamped with the generation it last took. */
export function renderNamespace(context: GenerationContext): SeedNamespace {
  return withSortedKeys({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: namespaceName(context.namespace), ...flakeStamp(context) },
  });
}
