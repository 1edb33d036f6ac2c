// The reconcile's converge and prune over an in-memory API server: which objects a
// generation writes, that a second pass writes nothing, that hand edits are undone and
// dropped instances pruned (volumes kept), and that a refused object fails only its
// instance. The same against a real kube-apiserver: test/reconciler.test.ts.
import { describe, expect, it } from '@jest/globals';
import { deriveNamespace } from '@seed/contracts';
import { DEFAULT_NETWORK } from '@seed/k8s-model';
import { createLogger } from '@seed/service-kit';
import { TerminalError } from '../../src/controller/work-queue';
import type { DesiredGeneration } from '../../src/flake-state';
import { FlakeReconciler } from '../../src/flake.reconciler';
import { ReconcilerMetrics } from '../../src/metrics';
import { generation, meta } from '../cluster';
import { InMemoryCluster, InMemoryStates } from './in-memory-cluster';

const FLAKE = 'github:acme/fast';
const web = meta('web', {
  expose: { http: { port: 8080, protocol: 'http' } },
  storage: { data: { mountPoint: '/var/lib/web', size: '1Gi' } },
});
const api = meta('api', { expose: { grpc: { port: 9000, protocol: 'grpc' } } });

function setUp() {
  const cluster = new InMemoryCluster();
  const states = new InMemoryStates(cluster);
  const events: string[] = [];
  const reconciler = new FlakeReconciler(
    cluster,
    states,
    cluster,
    { record: (_object, _type, reason) => void events.push(reason) },
    new ReconcilerMetrics(() => 0),
    createLogger('reconciler', 'silent'),
    { shootPoolPort: 7070, network: DEFAULT_NETWORK, resyncMs: 60_000 },
  );
  /** Stores `metas` as the flake's desired generation, as ApplyGeneration does. */
  const want = async (metas: ReturnType<typeof meta>[], revision = 'a') => {
    const { quota: _quota, ...request } = generation(FLAKE, metas, revision.repeat(40));
    const namespace = deriveNamespace(FLAKE);
    const desired = request as DesiredGeneration;
    await states.save(namespace, { ...(await states.load(namespace)), desired, lastError: '' });
    return namespace;
  };
  return { cluster, states, events, reconciler, want };
}

describe('FlakeReconciler (in-memory API server)', () => {
  it("writes the namespace's and each instance's objects once, then nothing", async () => {
    const { cluster, states, reconciler, want } = setUp();
    const namespace = await want([web, api]);

    await reconciler.reconcile(namespace);
    expect(cluster.names('Deployment').sort()).toEqual(['api', 'web']);
    expect(cluster.names('Service').sort()).toEqual(['api', 'web']);
    expect(cluster.names('PersistentVolumeClaim')).toEqual(['seed-web-data']);
    expect(cluster.names('Namespace')).toEqual([namespace]);
    expect((await states.load(namespace)).applied?.generation).toBe(
      (await states.load(namespace)).desired?.generation,
    );

    const before = cluster.writes.length;
    await reconciler.reconcile(namespace);
    expect(cluster.writes.slice(before)).toEqual([]);
  });

  it('puts back a hand-edited object and nothing else', async () => {
    const { cluster, reconciler, want, events } = setUp();
    const namespace = await want([web, api]);
    await reconciler.reconcile(namespace);
    cluster.edit('Deployment', namespace, 'web', (deployment) => {
      (deployment as unknown as { spec: { replicas: number } }).spec.replicas = 5;
    });
    const before = cluster.writes.length;
    await reconciler.reconcile(namespace);
    expect(cluster.writes.slice(before)).toEqual(['apply Deployment/web']);
    expect(events).toContain('Restored');
  });

  it('prunes an instance the generation dropped, keeping its volume claim', async () => {
    const { cluster, reconciler, want } = setUp();
    const namespace = await want([web, api]);
    await reconciler.reconcile(namespace);
    await want([api], 'b');
    await reconciler.reconcile(namespace);
    expect(cluster.names('Deployment')).toEqual(['api']);
    expect(cluster.names('Service')).toEqual(['api']);
    expect(cluster.names('PersistentVolumeClaim')).toEqual(['seed-web-data']);
    expect(cluster.writes).toContain('delete Deployment/web');
  });

  it('fails only the instance whose object is refused, and records why', async () => {
    const { cluster, states, reconciler, want } = setUp();
    const namespace = await want([web, api]);
    cluster.rejects.set('Service/api', 'spec.ports[0].port: Invalid value');
    const failure = await reconciler.reconcile(namespace).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TerminalError);
    expect((failure as Error).message).toMatch(/instance api: Service api: spec\.ports/);
    expect(cluster.names('Deployment').sort()).toEqual(['api', 'web']);
    expect(cluster.names('Service')).toEqual(['web']);
    expect((await states.load(namespace)).lastError).toMatch(/instance api/);
  });

  it('refuses a namespace recorded as another flake’s, writing nothing', async () => {
    const { cluster, reconciler, want } = setUp();
    const namespace = await want([web]);
    await cluster.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: namespace,
        annotations: { 'seed.loom.farm/flake-uri': 'github:other/flake' },
      },
    } as Parameters<InMemoryCluster['apply']>[0]);
    const before = cluster.writes.length;
    await expect(reconciler.reconcile(namespace)).rejects.toThrow(/belongs to github:other\/flake/);
    expect(cluster.writes.slice(before)).toEqual([]);
  });
});
