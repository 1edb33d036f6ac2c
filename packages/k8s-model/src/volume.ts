import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { ModelError } from './errors';
import type { GenerationContext, SeedInstance } from './input';
import { instanceObjectMeta } from './metadata';
import { pvcName, storageVolumeName } from './names';
import { sortedEntries, withSortedKeys, type SeedPersistentVolumeClaim } from './objects';

/**
 * A PersistentVolumeClaim `seed-<name>-<key>` per `seed.storage` entry, by key. Claims
 * hold tenant data: the reconciler creates and grows them, never shrinks or deletes them,
 * and they outlive the instance that declared them.
 */
export function renderPersistentVolumeClaims(
  context: GenerationContext,
  instance: SeedInstance,
): SeedPersistentVolumeClaim[] {
  return sortedEntries(instance.meta.storage).map(([key, entry]) =>
    withSortedKeys({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: instanceObjectMeta(context, instance, pvcName(instance.name, key)),
      spec: {
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: entry.size } },
      },
    }),
  );
}

/** The pod volumes of an instance's claims and where its container mounts them. */
export function storageVolumes(instance: SeedInstance): {
  volumes: IVolume[];
  volumeMounts: IVolumeMount[];
} {
  const volumes: IVolume[] = [];
  const volumeMounts: IVolumeMount[] = [];
  const keyByMountPoint = new Map<string, string>();
  for (const [key, entry] of sortedEntries(instance.meta.storage)) {
    // Kubernetes refuses two mounts on one path; the meta schema does not look across entries.
    const owner = keyByMountPoint.get(entry.mountPoint);
    if (owner !== undefined) {
      throw new ModelError({
        instance: instance.name,
        field: `meta.storage.${key}.mountPoint`,
        reason: `"${entry.mountPoint}" is already the mount point of meta.storage.${owner}`,
      });
    }
    keyByMountPoint.set(entry.mountPoint, key);
    const claimName = pvcName(instance.name, key);
    const name = storageVolumeName(instance.name, key);
    volumes.push({ name, persistentVolumeClaim: { claimName } });
    volumeMounts.push({ name, mountPath: entry.mountPoint });
  }
  return { volumes, volumeMounts };
}
