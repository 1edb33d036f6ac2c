// The informers' caches as the reconcile reads them: a cache behind the reconciler's own
// write is not taken for the live object. The API server and its watch are stand-ins
// here: a cache that is handed its objects, and reads that are counted.
import { describe, expect, it } from '@jest/globals';
import type { SeedObject } from '@seed/k8s-model';
import { createLogger } from '@seed/service-kit';
import type { KubeRepository, KubernetesObject } from '../../src/repositories/kube.repository';
import { ClusterObjects } from '../../src/sources/cluster-objects.source';

const deployment = (resourceVersion: string, image: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 's-abcdefghijkl', resourceVersion },
  spec: { image },
});

function setUp() {
  const cache = new Map<string, KubernetesObject>();
  const server = { object: undefined as KubernetesObject | undefined, reads: 0 };
  const kube = {
    watch: () => ({
      cached: (_namespace: string, name: string) => cache.get(name),
      list: () => [...cache.values()],
      stop: async () => {},
    }),
    read: () => {
      server.reads += 1;
      return Promise.resolve(server.object);
    },
  } as unknown as KubeRepository;
  const objects = new ClusterObjects(kube, createLogger('reconciler', 'silent'));
  objects.start(() => {});
  const wanted = deployment('', 'new') as unknown as SeedObject;
  return { cache, server, objects, wanted };
}

describe('ClusterObjects', () => {
  it('reads the API server while the cache is behind a write of the reconciler’s', async () => {
    const { cache, server, objects, wanted } = setUp();
    cache.set('web', deployment('1', 'old'));
    server.object = deployment('2', 'new');
    objects.wrote(deployment('2', 'new'));

    expect(await objects.get(wanted)).toEqual(server.object);
    expect(server.reads).toBe(1);
    // Caught up: the cache answers again, and goes on answering.
    cache.set('web', deployment('2', 'new'));
    expect(await objects.get(wanted)).toEqual(deployment('2', 'new'));
    cache.set('web', deployment('3', 'edited'));
    expect(await objects.get(wanted)).toEqual(deployment('3', 'edited'));
    expect(server.reads).toBe(1);
  });

  it('takes the API server’s copy as newer once someone wrote after the reconciler', async () => {
    const { cache, server, objects, wanted } = setUp();
    cache.set('web', deployment('1', 'old'));
    server.object = deployment('3', 'edited');
    objects.wrote(deployment('2', 'new'));

    expect(await objects.get(wanted)).toEqual(server.object);
    cache.set('web', deployment('3', 'edited'));
    expect(await objects.get(wanted)).toEqual(server.object);
    expect(server.reads).toBe(1);
  });

  it('forgets a write once the object is deleted', async () => {
    const { cache, server, objects, wanted } = setUp();
    objects.wrote(deployment('2', 'new'));
    objects.wrote(deployment('2', 'new'), true);
    cache.set('web', deployment('1', 'old'));
    expect(await objects.get(wanted)).toEqual(deployment('1', 'old'));
    expect(server.reads).toBe(0);
  });
});
