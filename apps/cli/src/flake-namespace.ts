import { ANNOTATION_FLAKE_URI } from '@seed/k8s-model';
import { deriveNamespace, parseFlakeRef } from '@seed/contracts';

/** Reads a namespace's annotations; undefined when it does not exist. */
export interface NamespaceLookup {
  namespace(name: string): Promise<{ annotations: Record<string, string> } | undefined>;
}

/**
 * The namespace of a flake Seed has applied, checked to be that flake's (its owner
 * annotation), or why not: a malformed URI, or no such flake. `fail` makes the caller's
 * own error of the kind; `ask` turns the caller's API failures into its errors.
 */
export async function appliedFlakeNamespace(
  kube: NamespaceLookup,
  flake: string,
  fail: (kind: 'invalid-flake' | 'unknown-flake', message: string) => Error,
  ask: <T>(call: () => Promise<T>) => Promise<T>,
): Promise<string> {
  try {
    parseFlakeRef(flake);
  } catch (error) {
    throw fail('invalid-flake', (error as Error).message);
  }
  const namespace = deriveNamespace(flake);
  const found = await ask(() => kube.namespace(namespace));
  if (!found)
    throw fail(
      'unknown-flake',
      `flake ${flake} has never been applied: there is no namespace ${namespace} (is the URI spelled as registered? see seed status)`,
    );
  const owner = found.annotations[ANNOTATION_FLAKE_URI];
  if (owner !== flake)
    throw fail(
      'unknown-flake',
      `namespace ${namespace} is not flake ${flake}'s: it belongs to ${owner ?? 'no Seed flake'}`,
    );
  return namespace;
}
