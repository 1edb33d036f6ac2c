import { ModelError, type SeedObject, type SeedObjectKind } from '../src';

export type ObjectOfKind<K extends SeedObjectKind> = Extract<SeedObject, { kind: K }>;

/** The object of that kind and name; fails the test when it is missing. */
export function objectOf<K extends SeedObjectKind>(
  objects: readonly SeedObject[],
  kind: K,
  name: string,
): ObjectOfKind<K> {
  const found = objects.find(
    (object): object is ObjectOfKind<K> => object.kind === kind && object.metadata.name === name,
  );
  if (found === undefined) throw new Error(`no ${kind} ${name} among the rendered objects`);
  return found;
}

export function objectsOf<K extends SeedObjectKind>(
  objects: readonly SeedObject[],
  kind: K,
): ObjectOfKind<K>[] {
  return objects.filter((object): object is ObjectOfKind<K> => object.kind === kind);
}

/** The one container of a rendered Deployment. */
export function containerOf(deployment: ObjectOfKind<'Deployment'>) {
  const container = deployment.spec?.template.spec?.containers[0];
  if (container === undefined)
    throw new Error(`Deployment ${deployment.metadata.name} has no container`);
  return container;
}

/** The ModelError `run` throws, as plain fields. */
export function modelErrorOf(
  run: () => unknown,
): Pick<ModelError, 'instance' | 'field' | 'reason'> {
  try {
    run();
  } catch (error) {
    if (error instanceof ModelError) {
      return { instance: error.instance, field: error.field, reason: error.reason };
    }
    throw error;
  }
  throw new Error('expected a ModelError');
}
