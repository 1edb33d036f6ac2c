// Apps types come through the package root: a `kubernetes-models/apps/...` path would trip
// the workspace lint rule that keeps apps/* from importing each other.
import type { apps } from 'kubernetes-models';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { ILimitRange } from 'kubernetes-models/v1/LimitRange';
import type { INamespace } from 'kubernetes-models/v1/Namespace';
import type { IPersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IResourceQuota } from 'kubernetes-models/v1/ResourceQuota';
import type { IService } from 'kubernetes-models/v1/Service';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';

/**
 * The objects Seed renders. Only the types of kubernetes-models are used: its classes
 * would add nothing to plain JSON but a prototype, and plain objects are what server-side
 * apply takes and what a sorted-key serialisation compares byte for byte.
 */

type IDeployment = apps.v1.IDeployment;

export type ObjectMeta = NonNullable<IDeployment['metadata']>;

/** A model whose metadata is present and named, as server-side apply requires. */
export type Named<T extends { metadata?: ObjectMeta }> = T & {
  metadata: ObjectMeta & { name: string };
};

export type SeedNamespace = Named<INamespace>;
export type SeedPersistentVolumeClaim = Named<IPersistentVolumeClaim>;
export type SeedDeployment = Named<IDeployment>;
export type SeedService = Named<IService>;
export type SeedNetworkPolicy = Named<INetworkPolicy>;
export type SeedResourceQuota = Named<IResourceQuota>;
export type SeedLimitRange = Named<ILimitRange>;
export type SeedConfigMap = Named<IConfigMap>;

export type SeedObject =
  | SeedNamespace
  | SeedResourceQuota
  | SeedLimitRange
  | SeedNetworkPolicy
  | SeedConfigMap
  | SeedPersistentVolumeClaim
  | SeedDeployment
  | SeedService;
export type SeedObjectKind = SeedObject['kind'];

/**
 * Kinds in the order they are applied: each may depend on the ones before it. The
 * bounds and the policies come before any pod, so no instance ever runs unbounded or
 * with its namespace open.
 */
export const KINDS_IN_APPLY_ORDER: readonly SeedObjectKind[] = [
  'Namespace',
  'ResourceQuota',
  'LimitRange',
  'NetworkPolicy',
  // A TPM request before its Deployment: the Deployment waits for the TPM it asks for.
  'ConfigMap',
  'PersistentVolumeClaim',
  'Deployment',
  'Service',
];

/** Byte order of ASCII names, independent of locale. */
export function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The entries of a record, sorted by key, so iteration order never depends on input order. */
export function sortedEntries<V>(record: Readonly<Record<string, V>>): [string, V][] {
  return Object.entries(record).sort(([a], [b]) => byName(a, b));
}

/**
 * A deep copy with the keys of every object sorted, so equal objects serialise to equal
 * bytes. Arrays keep their order: it means something (env variables refer to earlier ones).
 */
export function withSortedKeys<T>(value: T): T {
  return sortDeep(value) as T;
}

function sortDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortDeep);
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort(byName)
      .map((key) => [key, sortDeep(record[key])]),
  );
}
