import type { GenerationContext } from './input';
import { instanceLabels, namespaceName, sourceAnnotations } from './names';
import type { ObjectMeta } from './objects';

/** Metadata of an object that belongs to one instance: all three labels, both annotations. */
export function instanceObjectMeta(
  context: GenerationContext,
  instance: string,
  name: string,
): ObjectMeta & { name: string } {
  return {
    name,
    namespace: namespaceName(context.namespace),
    labels: instanceLabels(instance, context.generation),
    annotations: sourceAnnotations(context),
  };
}
