import type { GenerationContext, SeedInstance } from './input';
import { instanceStamp, namespaceName } from './names';
import type { ObjectMeta } from './objects';

/** Metadata of an object that belongs to one instance: its labels and its hash. */
export function instanceObjectMeta(
  context: GenerationContext,
  instance: SeedInstance,
  name: string,
): ObjectMeta & { name: string } {
  return { name, namespace: namespaceName(context.namespace), ...instanceStamp(instance) };
}
