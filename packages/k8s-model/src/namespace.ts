import type { GenerationContext } from './input';
import { namespaceLabels, namespaceName, sourceAnnotations } from './names';
import { withSortedKeys, type SeedNamespace } from './objects';

/** The flake's Namespace: Seed's, and stamped with the generation it last applied. */
export function renderNamespace(context: GenerationContext): SeedNamespace {
  return withSortedKeys({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: namespaceName(context.namespace),
      labels: namespaceLabels(context.generation),
      annotations: sourceAnnotations(context),
    },
  });
}
