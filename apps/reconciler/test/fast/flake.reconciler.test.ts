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
const movedApi = meta('api', { expose: { grpc: { port: 9001, protocol: 'grpc' } } });

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
  /** Proposes `metas` as the flake's next generation, as ApplyGeneration does while leading. */
  const propose = (metas: ReturnType<typeof meta>[], revision: string) => {
    const { quota: _quota, ...request } = generation(FLAKE, metas, revision.repeat(40));
    const desired = request as DesiredGeneration;
    states.proposals.set(deriveNamespace(FLAKE), desired);
    return desired;
  };
  return { cluster, states, events, reconciler, want, propose };
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

  it('records a proposed generation with its outcome in one write of the state', async () => {
    const { cluster, states, reconciler, want, propose } = setUp();
    const namespace = await want([web, api]);
    await reconciler.reconcile(namespace);
    const [writes, saves] = [cluster.writes.length, states.saves.length];

    const desired = propose([web, movedApi], 'b');
    await reconciler.reconcile(namespace);
    expect(cluster.writes.slice(writes)).toEqual([
      'apply NetworkPolicy/api',
      'apply Deployment/api',
      'apply Service/api',
    ]);
    expect(states.saves.slice(saves)).toEqual([
      expect.objectContaining({
        desired,
        applied: expect.objectContaining({ generation: desired.generation }),
        lastError: '',
      }),
    ]);
    expect(states.proposal(namespace)).toBeUndefined();
  });

  it('records a refused proposal with its error in one write, keeping the applied one', async () => {
    const { cluster, states, reconciler, want, propose } = setUp();
    const namespace = await want([web, api]);
    await reconciler.reconcile(namespace);
    const applied = (await states.load(namespace)).applied;
    const saves = states.saves.length;

    cluster.rejects.set('Service/api', 'spec.ports[0].port: Invalid value');
    const desired = propose([web, movedApi], 'b');
    await expect(reconciler.reconcile(namespace)).rejects.toThrow(TerminalError);
    expect(states.saves.slice(saves)).toEqual([
      expect.objectContaining({ desired, applied, lastError: expect.stringMatching(/api/) }),
    ]);
    expect(states.proposal(namespace)).toBeUndefined();
  });

  it('applies a Namespace once more to drop the generation an older Seed stamped on it', async () => {
    const { cluster, reconciler, want } = setUp();
    const namespace = await want([web]);
    await reconciler.reconcile(namespace);
    const stamped = (manager: string) =>
      cluster.edit('Namespace', '', namespace, (object) => {
        object.metadata.managedFields = [
          {
            manager,
            operation: 'Apply',
            fieldsV1: { 'f:metadata': { 'f:annotations': { 'f:seed.loom.farm/generation': {} } } },
          },
        ];
      });
    // Someone else's annotation: applying would not remove it, so nothing is sent.
    stamped('kubectl');
    let before = cluster.writes.length;
    await reconciler.reconcile(namespace);
    expect(cluster.writes.slice(before)).toEqual([]);

    stamped('seed');
    before = cluster.writes.length;
    await reconciler.reconcile(namespace);
    expect(cluster.writes.slice(before)).toEqual([`apply Namespace/${namespace}`]);
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
