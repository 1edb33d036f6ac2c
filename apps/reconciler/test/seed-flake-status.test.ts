// SeedFlake statuses as the reconciler writes them on a real API server (issue 19, item 1):
// kstatus conditions, the applied generation and revision, each instance's rollout, and
// a namespace another SeedFlake holds marked Stalled.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { deriveNamespace, type SeedFlakeResource } from '@seed/contracts';
import { instanceObjectName } from '@seed/k8s-model';
import { REMOVAL_FINALIZER } from '../src/seed-flake-status';
import { SeedFlakeClient } from '@seed/seed-flakes';
import {
  collidingFlakeUris,
  installSeedFlakeCrd,
  startKubeApiServer,
  type KubeApiServer,
} from '@seed/testing';
import { Cluster, generation, meta, startReconciler, type RunningReconciler } from './cluster';

const FLAKE = 'github:acme/status';
const NS = deriveNamespace(FLAKE);

let api: KubeApiServer;
let reconciler: RunningReconciler;
let cluster: Cluster;
let flakes: SeedFlakeClient;

beforeAll(async () => {
  api = await startKubeApiServer();
  await installSeedFlakeCrd(api);
  reconciler = await startReconciler(api.kubeconfigPath, {
    SEED_SEEDFLAKE_STATUS_SECONDS: '1',
    SEED_REMOVAL_GRACE_SECONDS: '2',
  });
  cluster = new Cluster(api.kubeconfigPath);
  const config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  flakes = new SeedFlakeClient(config, 'seed-test');
}, 20 * 60_000);

afterAll(async () => {
  await reconciler?.stop();
  await api?.stop();
});

/** The SeedFlake once `check` holds for it (statuses are written every second). */
async function once(
  name: string,
  check: (flake: SeedFlakeResource) => boolean,
): Promise<SeedFlakeResource> {
  let flake = await flakes.get(name);
  for (const deadline = Date.now() + 30_000; !(flake && check(flake));) {
    if (Date.now() > deadline)
      throw new Error(`SeedFlake ${name}: ${JSON.stringify(flake?.status)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    flake = await flakes.get(name);
  }
  return flake;
}

const condition = (flake: SeedFlakeResource, type: string) =>
  flake.status?.conditions?.find((c) => c.type === type);
const reason = (flake: SeedFlakeResource) => condition(flake, 'Ready')?.reason;

describe('SeedFlake statuses', () => {
  it('says a new flake waits for its first generation, in its namespace', async () => {
    await flakes.apply('status', { flake: FLAKE, repository: 'acme/status', secretKey: 'status' });
    const flake = await once('status', (f) => reason(f) === 'AwaitingGeneration');
    expect(flake.status).toMatchObject({
      observedGeneration: 1,
      namespace: NS,
      generation: '',
      lastAppliedRevision: '',
    });
    expect(condition(flake, 'Ready')?.status).toBe('False');
    expect(condition(flake, 'Reconciling')).toMatchObject({
      status: 'True',
      reason: 'AwaitingGeneration',
    });
    expect(condition(flake, 'Stalled')?.status).toBe('False');
  });

  it('follows a generation from rolling out to Ready, keeping transition times', async () => {
    const request = generation(FLAKE, [meta('web')], 'b'.repeat(40));
    await reconciler.builder.apply(request);
    const rolling = await once('status', (f) => reason(f) === 'Progressing');
    expect(rolling.status).toMatchObject({
      generation: request.generation,
      lastAppliedRevision: 'b'.repeat(40),
      lastError: '',
      instances: [{ name: 'web', state: 'Progressing' }],
    });
    expect(condition(rolling, 'Reconciling')?.status).toBe('True');

    await cluster.setDeploymentStatus(NS, instanceObjectName('web'), {
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
      conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
    });
    const ready = await once('status', (f) => reason(f) === 'Applied');
    expect(condition(ready, 'Ready')).toMatchObject({
      status: 'True',
      message: `generation ${request.generation} from bbbbbbbbbbbb runs on every instance`,
    });
    expect(ready.status?.instances).toEqual([
      { name: 'web', state: 'Available', readyReplicas: 1 },
    ]);
    // Stalled stayed False throughout: its transition time is the first one written.
    expect(condition(ready, 'Stalled')?.lastTransitionTime).toBe(
      condition(rolling, 'Stalled')?.lastTransitionTime,
    );
  });

  it('says Ready but suspended once suspended', async () => {
    await flakes.patch('status', { spec: { suspend: true } });
    const suspended = await once('status', (f) => reason(f) === 'Suspended');
    expect(suspended.status?.observedGeneration).toBe(2);
    expect(condition(suspended, 'Ready')?.status).toBe('True');
    await flakes.patch('status', { spec: { suspend: false } });
    await once('status', (f) => reason(f) === 'Applied');
  });

  it('marks the younger of two SeedFlakes whose flakes share a namespace Stalled', async () => {
    const [older, younger] = collidingFlakeUris();
    await flakes.apply('older', { flake: older, repository: 'acme/older', secretKey: 'older' });
    await new Promise((resolve) => setTimeout(resolve, 1100)); // creation times are in seconds
    await flakes.apply('younger', { flake: younger, repository: 'acme/y', secretKey: 'younger' });
    const stalled = await once('younger', (f) => condition(f, 'Stalled')?.status === 'True');
    expect(condition(stalled, 'Stalled')).toMatchObject({
      reason: 'NamespaceTaken',
      message: `its flake's namespace ${deriveNamespace(older)} belongs to SeedFlake older: delete one of them`,
    });
    expect(reason(await once('older', (f) => reason(f) !== undefined))).toBe('AwaitingGeneration');
    await flakes.delete('older');
    await once('younger', (f) => reason(f) === 'AwaitingGeneration');
    await flakes.delete('younger');
  });

  it('removes a deleted SeedFlake’s flake after its grace, keeping its claims and namespace', async () => {
    const flake = 'github:acme/removed';
    const ns = deriveNamespace(flake);
    await flakes.apply('removed', { flake, repository: 'acme/removed', secretKey: 'removed' });
    const held = await once(
      'removed',
      (f) => f.metadata.finalizers?.includes(REMOVAL_FINALIZER) ?? false,
    );
    expect(held.metadata.finalizers).toEqual([REMOVAL_FINALIZER]);
    await reconciler.builder.apply(
      generation(flake, [
        meta('db', { storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } } }),
        meta('web'),
      ]),
    );
    expect(await cluster.names(ns)).toEqual(
      expect.arrayContaining(['Deployment/db', 'Deployment/web', 'PVC/seed-db-data']),
    );

    await flakes.delete('removed');
    // The grace: it is still served, and says when it goes.
    const removing = await once(
      'removed',
      (f) => condition(f, 'Reconciling')?.reason === 'Removing',
    );
    expect(condition(removing, 'Reconciling')?.message).toMatch(
      /^deleted: its instances are removed at \S+, its volume claims kept$/,
    );
    expect(await cluster.names(ns)).toContain('Deployment/web');

    await cluster.until(
      async () => (await flakes.get('removed')) === undefined,
      'the SeedFlake to go',
    );
    await cluster.until(
      async () => !(await cluster.names(ns)).some((n) => n.startsWith('Deployment/')),
      'its Deployments to go',
    );
    const left = await cluster.names(ns);
    expect(left).toContain('PVC/seed-db-data');
    expect(left.filter((n) => n.startsWith('Service/') || n.startsWith('Deployment/'))).toEqual([]);
    expect((await cluster.events(ns)).map((e) => e.reason)).toContain('FlakeRemoved');
    // seed status lists the flake as removed, with its claims and the command to delete them.
    const listed = (await reconciler.builder.list()).find((f) => f.flakeUri === flake)!;
    expect(listed).toMatchObject({ instances: [], keptClaims: ['seed-db-data'] });
    expect(listed.removedAt).not.toBe('');

    // The last claim deleted, the namespace goes (at the next resync or claim event).
    await cluster.core.deleteNamespacedPersistentVolumeClaim({
      namespace: ns,
      name: 'seed-db-data',
    });
    await cluster.core
      .patchNamespacedPersistentVolumeClaim({
        namespace: ns,
        name: 'seed-db-data',
        body: [{ op: 'remove', path: '/metadata/finalizers' }],
      })
      .catch(() => undefined);
    await cluster.until(async () => {
      const namespace = await cluster.core.readNamespace({ name: ns }).catch(() => undefined);
      return namespace === undefined || namespace.metadata?.deletionTimestamp !== undefined;
    }, 'the namespace to be deleted');
  });
});
