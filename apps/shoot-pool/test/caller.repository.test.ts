// KubeCallerResolver against a real API server (no kubelet: pod and claim statuses are
// written through their status subresources, as a kubelet and the PV controller would).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer } from '@seed/testing';
import { CallerRejected } from '../src/caller/caller';
import { KubeCallerResolver } from '../src/caller/caller.repository';

const NAMESPACE = 'seed-shoot-test';
let api: KubeApiServer;
let core: CoreV1Api;
let resolver: KubeCallerResolver;

interface PodShape {
  name: string;
  ip: string;
  labelled?: boolean;
  shoots?: boolean;
  claim?: string;
}

async function runningPod(shape: PodShape): Promise<void> {
  const pod: V1Pod = {
    metadata: {
      name: shape.name,
      namespace: NAMESPACE,
      labels: shape.labelled === false ? { app: 'other' } : { 'seed.loom.farm/managed-by': 'seed' },
    },
    spec: {
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'instance',
          image: 'nix:0/nix/store/x-instance',
          env:
            shape.shoots === false
              ? []
              : [{ name: 'SEED_SHOOT_URL', value: 'http://10.0.0.1:7070' }],
          volumeMounts:
            shape.claim === undefined ? [] : [{ name: 'data', mountPath: '/var/lib/app' }],
        },
      ],
      volumes:
        shape.claim === undefined
          ? []
          : [{ name: 'data', persistentVolumeClaim: { claimName: shape.claim } }],
    },
  };
  const created = await core.createNamespacedPod({ namespace: NAMESPACE, body: pod });
  created.status = { phase: 'Running', podIP: shape.ip, podIPs: [{ ip: shape.ip }] };
  await core.replaceNamespacedPodStatus({ name: shape.name, namespace: NAMESPACE, body: created });
}

async function claim(name: string, volumeName?: string): Promise<void> {
  const created = await core.createNamespacedPersistentVolumeClaim({
    namespace: NAMESPACE,
    body: {
      metadata: { name },
      spec: {
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
        ...(volumeName === undefined ? {} : { volumeName }),
      },
    },
  });
  if (volumeName === undefined) return;
  created.status = { phase: 'Bound' };
  await core.replaceNamespacedPersistentVolumeClaimStatus({
    name,
    namespace: NAMESPACE,
    body: created,
  });
}

async function rejection(ip: string): Promise<CallerRejected> {
  const error = await resolver.resolve(ip).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(CallerRejected);
  return error as CallerRejected;
}

beforeAll(async () => {
  api = await startKubeApiServer();
  const config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  core = config.makeApiClient(CoreV1Api);
  resolver = new KubeCallerResolver(config, '/nix/store');
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  await core.createNamespacedServiceAccount({
    namespace: NAMESPACE,
    body: { metadata: { name: 'default' } },
  });
  await core.createPersistentVolume({
    body: {
      metadata: { name: 'pv-data' },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        hostPath: { path: '/srv/volumes/data' },
        claimRef: { namespace: NAMESPACE, name: 'data' },
      },
    },
  });
  await claim('data', 'pv-data');
  await claim('pending');
  await runningPod({ name: 'instance', ip: '127.0.0.5', claim: 'data' });
  await runningPod({ name: 'stranger', ip: '127.0.0.6', labelled: false });
  await runningPod({ name: 'twin-a', ip: '127.0.0.7' });
  await runningPod({ name: 'twin-b', ip: '127.0.0.7' });
  await runningPod({ name: 'no-shoots', ip: '127.0.0.8', shoots: false });
  await runningPod({ name: 'unbound', ip: '127.0.0.9', claim: 'pending' });
}, 120_000);

afterAll(async () => {
  await api?.stop();
});

describe('KubeCallerResolver', () => {
  it('finds the Seed pod by IP with its volumes on the host', async () => {
    expect(await resolver.resolve('::ffff:127.0.0.5')).toEqual({
      key: `${NAMESPACE}/instance`,
      store: '/nix/store',
      volumes: [{ hostPath: '/srv/volumes/data', mountPoint: '/var/lib/app' }],
    });
  });

  it('refuses an IP no running pod has', async () => {
    const error = await rejection('127.0.0.99');
    expect(error.status).toBe(403);
    expect(error.message).toMatch(/no running pod has IP 127\.0\.0\.99/);
  });

  it('refuses a pod without the Seed label', async () => {
    const error = await rejection('127.0.0.6');
    expect(error.status).toBe(403);
    expect(error.message).toMatch(/stranger is not labelled seed\.loom\.farm\/managed-by=seed/);
  });

  it('refuses an IP two pods have', async () => {
    const error = await rejection('127.0.0.7');
    expect(error.status).toBe(403);
    expect(error.message).toMatch(/2 running pods have IP/);
  });

  it('refuses a pod that has not enabled shoots', async () => {
    const error = await rejection('127.0.0.8');
    expect(error.status).toBe(403);
    expect(error.message).toMatch(/no-shoots has not enabled shoots/);
  });

  it('refuses a pod whose claim is not bound', async () => {
    const error = await rejection('127.0.0.9');
    expect(error.status).toBe(409);
    expect(error.message).toMatch(/claim seed-shoot-test\/pending is not bound/);
  });
});
