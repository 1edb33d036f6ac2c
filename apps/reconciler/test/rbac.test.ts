// The reconciler run as its ServiceAccount, bound to the ClusterRole that
// deploy/manifests/rbac.yaml installs (and docs/reconciler.md documents): every request
// it makes, status and Events included, must be allowed by that role and nothing more.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  KubeConfig,
  KubernetesObjectApi,
  loadAllYaml,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { deriveNamespace } from '@seed/contracts';
import { SeedFlakeClient } from '@seed/seed-flakes';
import {
  installSeedFlakeCrd,
  serviceAccountKubeconfig,
  startKubeApiServer,
  type KubeApiServer,
} from '@seed/testing';
import { LEADER_POD_LABEL, LeaderElector } from '../src/controller/leader-election';
import { KubeRepository } from '../src/repositories/kube.repository';
import {
  Builder,
  Cluster,
  generation,
  meta,
  startReconciler,
  type RunningReconciler,
} from './cluster';

const MANIFESTS = path.resolve(__dirname, '../../../deploy/manifests');
const RBAC = path.join(MANIFESTS, 'rbac.yaml');
const ADMISSION = path.join(MANIFESTS, 'admission.yaml');
const FLAKE = 'github:acme/rbac';
const NS = deriveNamespace(FLAKE);

let api: KubeApiServer;
let cluster: Cluster;
let kubeconfig: string;
let running: RunningReconciler | undefined;
let builder: Builder | undefined;

async function startReconcilerAs(): Promise<Builder> {
  running = await startReconciler(kubeconfig, { SEED_SEEDFLAKE_STATUS_SECONDS: '1' });
  builder = running.builder;
  return builder;
}

async function stopReconciler(): Promise<void> {
  await running?.stop();
  builder = undefined;
  running = undefined;
}

beforeAll(async () => {
  api = await startKubeApiServer();
  cluster = new Cluster(api.kubeconfigPath);
  const admin = new KubeConfig();
  admin.loadFromFile(api.kubeconfigPath);
  const objects = KubernetesObjectApi.makeApiClient(admin);
  await cluster.core.createNamespace({ body: { metadata: { name: 'seed-system' } } });
  await installSeedFlakeCrd(api);
  for (const file of [RBAC, ADMISSION]) {
    for (const object of loadAllYaml(readFileSync(file, 'utf8')) as KubernetesObject[])
      await objects.create(object);
  }
  kubeconfig = await serviceAccountKubeconfig(api, 'seed-system', 'seed-reconciler');
}, 20 * 60_000);

afterAll(async () => {
  await stopReconciler();
  await api?.stop();
});

describe('the reconciler under its ClusterRole', () => {
  it("writes SeedFlakes' statuses and finalizers, and cannot delete them", async () => {
    const admin = new KubeConfig();
    admin.loadFromFile(api.kubeconfigPath);
    const flakes = new SeedFlakeClient(admin, 'seed-test');
    await flakes.apply('rbac', { flake: FLAKE, repository: 'acme/rbac', secretKey: 'rbac' });
    await startReconcilerAs();
    await cluster.until(
      async () => (await flakes.get('rbac'))?.status?.namespace === NS,
      'the SeedFlake status',
    );
    const own = new KubeConfig();
    own.loadFromFile(kubeconfig);
    await cluster.until(
      async () => (await flakes.get('rbac'))?.metadata.finalizers?.length === 1,
      'the removal finalizer',
    );
    await expect(new SeedFlakeClient(own, 'seed-reconciler').delete('rbac')).rejects.toThrow(
      /forbidden/i,
    );
    await flakes.delete('rbac');
    await stopReconciler();
  });

  it('applies, prunes, reports rollouts and records Events', async () => {
    const reconciler = await startReconcilerAs();
    // `old` has a TPM: its request is written, its status read, and it is pruned too.
    await reconciler.apply(generation(FLAKE, [meta('web'), meta('old', { tpm: true })]));
    expect(await cluster.names(NS)).toContain('ConfigMap/seed-tpm-old');
    expect((await reconciler.status(FLAKE)).instances).toContainEqual(
      expect.objectContaining({ name: 'old', reason: 'TpmPending' }),
    );
    await reconciler.apply(generation(FLAKE, [meta('web')]));
    await cluster.until(
      async () => (await cluster.events(NS)).some((e) => e.reason === 'Pruned'),
      'the Pruned Event',
    );
    await cluster.until(
      async () => !(await cluster.names(NS)).includes('ConfigMap/seed-tpm-old'),
      'the TPM request pruned',
    );

    await cluster.setDeploymentStatus(NS, 'web', { replicas: 1, updatedReplicas: 1 });
    await cluster.createPod(NS, 'web', 'web-5d8f-aaaaa', 'node-1');
    await cluster.setPodStatus(NS, 'web-5d8f-aaaaa', {
      phase: 'Pending',
      containerStatuses: [
        {
          name: 'web',
          image: 'x',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: 'ErrImagePull', message: 'not found' } },
        },
      ],
    });
    const status = await reconciler.status(FLAKE);
    expect(status.instances).toMatchObject([
      { name: 'web', rollout: 'failed', reason: 'ErrImagePull' },
    ]);
    await cluster.until(
      async () => (await cluster.events(NS)).some((e) => e.reason === 'InstanceFailed'),
      'the InstanceFailed Event',
    );
  });

  it('attack: the reconciler writing outside Seed namespaces is denied by the API server', async () => {
    const asReconciler = new KubeConfig();
    asReconciler.loadFromFile(kubeconfig);
    const objects = KubernetesObjectApi.makeApiClient(asReconciler);
    const denial = async (action: () => Promise<unknown>): Promise<string> => {
      try {
        await action();
      } catch (error) {
        return String((error as { body?: unknown }).body ?? error);
      }
      return 'allowed';
    };
    const configMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'seed-state', namespace: 'kube-system' },
      data: {},
    };
    // The API server picks up a new policy within a few seconds.
    await cluster.until(
      async () => (await denial(() => objects.create(configMap))) !== 'allowed',
      'the policy to deny',
    );
    expect(await denial(() => objects.create(configMap))).toContain(
      'the reconciler writes only in namespaces labelled seed.loom.farm/managed-by=seed, not in kube-system',
    );
    const adopt = {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'kube-system', labels: { 'seed.loom.farm/managed-by': 'seed' } },
    };
    expect(await denial(() => objects.patch(adopt))).toContain(
      'the reconciler makes and changes only flake namespaces',
    );
    // Its own flake's namespace is still its to write in.
    expect(
      await denial(() =>
        objects.create({ ...configMap, metadata: { name: 'probe', namespace: NS } }),
      ),
    ).toBe('allowed');
  });

  it('raises the count of an Event told again after a restart', async () => {
    await stopReconciler();
    // The new process has forgotten what it told: it tells again, into the same Event.
    await startReconcilerAs();
    await cluster.until(
      async () =>
        (await cluster.events(NS)).some((e) => e.reason === 'InstanceFailed' && e.count === 2),
      'the InstanceFailed Event counted twice',
    );
    const failed = (await cluster.events(NS)).filter((e) => e.reason === 'InstanceFailed');
    expect(failed).toHaveLength(1);
  });

  it('elects a leader on its Lease in seed-system, and may touch no other Lease', async () => {
    const kube = KubeRepository.fromKubeconfig(kubeconfig);
    let leading = false;
    const elector = new LeaderElector(
      kube.lease('seed-system', 'seed-reconciler'),
      { identity: 'rbac-test', leaseMs: 3000, renewDeadlineMs: 2000, retryMs: 200 },
      {
        onStartedLeading: () => (leading = true),
        onStoppedLeading: () => undefined,
        onError: () => undefined,
      },
    );
    elector.start();
    await cluster.until(() => Promise.resolve(leading), 'leadership');
    // Renewing takes get and update on the Lease by name.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(elector.isLeader).toBe(true);
    await elector.stop();
    await expect(kube.lease('seed-system', 'someone-else').get()).rejects.toMatchObject({
      status: 403,
    });
    await expect(
      kube.lease('kube-system', 'seed-reconciler').create({
        holder: 'rbac-test',
        leaseDurationSeconds: 3,
        acquireTime: new Date(),
        renewTime: new Date(),
        transitions: 0,
      }),
    ).rejects.toMatchObject({ status: 403 });
  });

  describe("the leader's pod label, which the Service selects", () => {
    const pod = async (name: string, app: string) =>
      cluster.core.createNamespacedPod({
        namespace: 'seed-system',
        body: {
          metadata: { name, labels: { 'app.kubernetes.io/name': app } },
          spec: {
            serviceAccountName: 'seed-reconciler',
            automountServiceAccountToken: false,
            containers: [{ name: 'main', image: 'seed/reconciler:dev' }],
          },
        },
      });
    const labels = async (name: string) =>
      (await cluster.core.readNamespacedPod({ namespace: 'seed-system', name })).metadata?.labels ??
      {};

    beforeAll(async () => {
      await pod('reconciler-a', 'reconciler');
      await pod('webhook-a', 'webhook');
    });

    it('is put on its own pod while it leads, and taken off when it stops', async () => {
      await stopReconciler();
      running = await startReconciler(kubeconfig, {
        SEED_LEASE_NAMESPACE: 'seed-system',
        SEED_LEASE_SECONDS: '3',
        SEED_POD_NAME: 'reconciler-a',
      });
      await cluster.until(
        async () => (await labels('reconciler-a'))[LEADER_POD_LABEL] === 'true',
        'the leader label on its pod',
      );
      await stopReconciler();
      expect((await labels('reconciler-a'))[LEADER_POD_LABEL]).toBeUndefined();
      expect(await labels('reconciler-a')).toEqual({ 'app.kubernetes.io/name': 'reconciler' });
    });

    it('attack: the reconciler labelling another pod, or changing more than its leader label, is denied', async () => {
      const kube = KubeRepository.fromKubeconfig(kubeconfig);
      const denied = { status: 403 };
      // Another service's pod, to draw the reconciler's traffic to it.
      await expect(
        kube.labelPod('seed-system', 'webhook-a', LEADER_POD_LABEL, 'true'),
      ).rejects.toMatchObject(denied);
      // Its own pod's other labels: taking it out of its Deployment.
      await expect(
        kube.labelPod('seed-system', 'reconciler-a', 'app.kubernetes.io/name', 'webhook'),
      ).rejects.toMatchObject(denied);
      await expect(
        kube.labelPod('seed-system', 'reconciler-a', LEADER_POD_LABEL, 'maybe'),
      ).rejects.toMatchObject(denied);
      // Pods outside seed-system: RBAC gives none.
      await expect(
        kube.labelPod('kube-system', 'anything', LEADER_POD_LABEL, 'true'),
      ).rejects.toMatchObject(denied);
      await kube.labelPod('seed-system', 'reconciler-a', LEADER_POD_LABEL, 'true');
      await kube.labelPod('seed-system', 'reconciler-a', LEADER_POD_LABEL, null);
      expect(await labels('reconciler-a')).toEqual({ 'app.kubernetes.io/name': 'reconciler' });
    });
  });
});
