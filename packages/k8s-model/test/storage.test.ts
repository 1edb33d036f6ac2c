import { describe, expect, it } from '@jest/globals';
import { renderGeneration, renderPersistentVolumeClaims } from '../src';
import { generation, instance } from './fixtures';
import { objectsOf } from './helpers';

describe('renderPersistentVolumeClaims', () => {
  const db = instance('db', {
    storage: {
      wal: { size: '10Gi', mountPoint: '/var/lib/wal' },
      data: { size: '500Mi', mountPoint: '/seed/storage/data' },
    },
  });

  it('renders a ReadWriteOnce claim seed-<name>-<key> per entry, by key', () => {
    expect(renderPersistentVolumeClaims(generation([]), db)).toEqual([
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: {
          name: 'seed-db-data',
          namespace: 's-abcdefghijkl',
          labels: {
            'seed.loom.farm/managed-by': 'seed',
            'seed.loom.farm/instance': 'db',
          },
          annotations: {
            'seed.loom.farm/instance-hash': expect.stringMatching(/^[0-9a-f]{12}$/),
          },
        },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '500Mi' } } },
      },
      expect.objectContaining({
        metadata: expect.objectContaining({ name: 'seed-db-wal' }),
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } },
      }),
    ]);
  });

  it('renders none without storage', () => {
    expect(renderPersistentVolumeClaims(generation([]), instance('web'))).toEqual([]);
  });

  it('claims of every instance come before any Deployment', () => {
    const objects = renderGeneration(generation([instance('web'), db]));
    const instanceObjects = objects.filter(
      (object) => !['ResourceQuota', 'LimitRange', 'NetworkPolicy'].includes(object.kind),
    );
    expect(instanceObjects.map((object) => `${object.kind}/${object.metadata.name}`)).toEqual([
      'Namespace/s-abcdefghijkl',
      'PersistentVolumeClaim/seed-db-data',
      'PersistentVolumeClaim/seed-db-wal',
      'Deployment/db',
      'Deployment/web',
    ]);
    expect(objectsOf(objects, 'PersistentVolumeClaim')).toHaveLength(2);
  });
});
