// Instance rollout and Events against a real kube-apiserver. No kubelet, scheduler or
// controller manager runs, so the test plays their parts: it creates the pods a
// ReplicaSet would, and writes pod and Deployment status through the status subresource
// the way the kubelet, the scheduler and the Deployment controller do.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { CoreV1Event, V1DeploymentStatus } from '@kubernetes/client-node';
import { deriveNamespace, type FlakeStatus__Output } from '@seed/contracts';
import type { KubeApiServer } from '@seed/testing';
import { KubeRepository } from '../src/repositories/kube.repository';
import {
  Builder,
  Cluster,
  generation,
  meta,
  startReconcilerWorld,
  type ReconcilerWorld,
} from './cluster';

const FLAKE = 'github:acme/rollout';
const NS = deriveNamespace(FLAKE);
const NAMES = ['crash', 'deadline', 'gone', 'good', 'img', 'nosched'];

let api: KubeApiServer;
let world: ReconcilerWorld | undefined;
let builder: Builder;
let cluster: Cluster;

beforeAll(async () => {
  world = await startReconcilerWorld();
  ({ api, builder, cluster } = world);
}, 20 * 60_000);

afterAll(async () => {
  await world?.stop();
});

const unavailable: Omit<V1DeploymentStatus, 'observedGeneration'> = {
  replicas: 1,
  updatedReplicas: 1,
  unavailableReplicas: 1,
  conditions: [
    { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable' },
    { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated' },
  ],
};

const scheduled = [{ type: 'PodScheduled', status: 'True' }];

function waiting(instance: string, reason: string, message: string, restartCount = 0) {
  return {
    name: instance,
    image: `nix:0/nix/store/${'0'.repeat(32)}-${instance}`,
    imageID: '',
    ready: false,
    restartCount,
    state: { waiting: { reason, message } },
    ...(restartCount > 0 && {
      lastState: { terminated: { exitCode: 1, reason: 'Error' } },
    }),
  };
}

function instance(status: FlakeStatus__Output, name: string) {
  return status.instances.find((i) => i.name === name);
}

async function eventsAbout(kind: string, name: string): Promise<CoreV1Event[]> {
  return (await cluster.events(NS)).filter(
    (e) => e.involvedObject.kind === kind && e.involvedObject.name === name,
  );
}

async function untilEvent(kind: string, name: string, reason: string): Promise<CoreV1Event> {
  let found: CoreV1Event | undefined;
  await cluster.until(async () => {
    found = (await eventsAbout(kind, name)).find((e) => e.reason === reason);
    return found !== undefined;
  }, `Event ${reason} on ${kind}/${name}`);
  return found!;
}

describe('instance rollout', () => {
  it('records what the first apply created', async () => {
    await builder.apply(
      generation(
        FLAKE,
        NAMES.map((name) => meta(name)),
      ),
    );
    const status = await builder.status(FLAKE);
    // Nothing has seen the Deployments yet: no controller runs here.
    expect(status.instances.map((i) => [i.name, i.rollout, i.reason])).toEqual(
      NAMES.map((name) => [name, 'progressing', 'DeploymentPending']),
    );
    const created = await untilEvent('Deployment', 'good', 'Created');
    expect(created).toMatchObject({
      type: 'Normal',
      message: expect.stringMatching(/^generation [0-9a-f]{12}: created$/),
      reportingComponent: 'seed-reconciler',
      involvedObject: { uid: (await cluster.deployment(NS, 'good'))!.metadata!.uid },
    });
    const applied = await untilEvent('ConfigMap', 'seed-state', 'GenerationApplied');
    expect(applied.message).toMatch(/^generation [0-9a-f]{12} \(commit a{12}\) applied$/);
    expect(applied.involvedObject.uid).toBeTruthy();
  });

  it('reports failures from the pods and the Deployment, with their reasons', async () => {
    for (const name of NAMES) await cluster.setDeploymentStatus(NS, name, unavailable);
    await cluster.setDeploymentStatus(NS, 'deadline', {
      ...unavailable,
      conditions: [
        { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable' },
        {
          type: 'Progressing',
          status: 'False',
          reason: 'ProgressDeadlineExceeded',
          message: 'ReplicaSet "deadline-5d8f" has timed out progressing.',
        },
      ],
    });
    await cluster.setDeploymentStatus(NS, 'good', {
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
      conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
    });

    await cluster.createPod(NS, 'img', 'img-5d8f-aaaaa', 'node-1');
    await cluster.setPodStatus(NS, 'img-5d8f-aaaaa', {
      phase: 'Pending',
      conditions: scheduled,
      containerStatuses: [
        waiting('img', 'ImagePullBackOff', 'Back-off pulling image: store path not found'),
      ],
    });
    await cluster.createPod(NS, 'crash', 'crash-5d8f-aaaaa', 'node-1');
    await cluster.setPodStatus(NS, 'crash-5d8f-aaaaa', {
      phase: 'Running',
      conditions: scheduled,
      containerStatuses: [waiting('crash', 'CrashLoopBackOff', 'back-off 40s', 3)],
    });
    await cluster.createPod(NS, 'nosched', 'nosched-5d8f-aaaaa');
    await cluster.setPodStatus(NS, 'nosched-5d8f-aaaaa', {
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: '0/1 nodes are available: 1 Insufficient memory.',
        },
      ],
    });
    await cluster.createPod(NS, 'deadline', 'deadline-5d8f-aaaaa', 'node-1');
    await cluster.setPodStatus(NS, 'deadline-5d8f-aaaaa', {
      phase: 'Pending',
      conditions: scheduled,
      containerStatuses: [waiting('deadline', 'ContainerCreating', '')],
    });
    await cluster.createPod(NS, 'good', 'good-5d8f-aaaaa', 'node-1');
    await cluster.setPodStatus(NS, 'good-5d8f-aaaaa', {
      phase: 'Running',
      conditions: [...scheduled, { type: 'Ready', status: 'True' }],
      containerStatuses: [
        {
          name: 'good',
          image: 'x',
          imageID: '',
          ready: true,
          restartCount: 0,
          state: { running: { startedAt: new Date() } },
        },
      ],
    });

    const status = await builder.status(FLAKE);
    expect(instance(status, 'good')).toEqual({
      name: 'good',
      rollout: 'available',
      readyReplicas: 1,
      reason: '',
      message: '',
    });
    expect(instance(status, 'img')).toMatchObject({
      rollout: 'failed',
      reason: 'ImagePullBackOff',
      message: expect.stringMatching(
        /^image not found or not pullable: nix:0\/nix\/store\/0+-img: Back-off pulling image: store path not found \(pod img-5d8f-aaaaa\)$/,
      ),
    });
    expect(instance(status, 'crash')).toMatchObject({
      rollout: 'failed',
      reason: 'CrashLoopBackOff',
      message:
        'crash loop: container crash restarted 3 times, last exit code 1 (Error) (pod crash-5d8f-aaaaa)',
    });
    expect(instance(status, 'nosched')).toMatchObject({
      rollout: 'failed',
      reason: 'Unschedulable',
      message:
        'not schedulable: 0/1 nodes are available: 1 Insufficient memory. (pod nosched-5d8f-aaaaa)',
    });
    expect(instance(status, 'deadline')).toMatchObject({
      rollout: 'failed',
      reason: 'ProgressDeadlineExceeded',
      message: 'ReplicaSet "deadline-5d8f" has timed out progressing.',
    });
    expect(instance(status, 'gone')).toMatchObject({
      rollout: 'progressing',
      reason: 'PodPending',
      message: 'waiting for a pod to be created',
    });
    // ListStatus answers the same.
    const listed = (await builder.list()).find((flake) => flake.flakeUri === FLAKE);
    expect(listed?.instances).toEqual(status.instances);
  });

  it('records one InstanceFailed Event per failed instance, on its Deployment', async () => {
    for (const [name, reason] of [
      ['img', 'ImagePullBackOff'],
      ['crash', 'CrashLoopBackOff'],
      ['nosched', 'Unschedulable'],
      ['deadline', 'ProgressDeadlineExceeded'],
    ] as const) {
      const event = await untilEvent('Deployment', name, 'InstanceFailed');
      expect(event).toMatchObject({
        type: 'Warning',
        count: 1,
        message: expect.stringMatching(new RegExp(`^${reason}: `)),
        involvedObject: {
          apiVersion: 'apps/v1',
          uid: (await cluster.deployment(NS, name))!.metadata!.uid,
        },
      });
    }
    expect(
      (await eventsAbout('Deployment', 'good')).filter((e) => e.reason === 'InstanceFailed'),
    ).toEqual([]);
  });

  it('does not record a failure again while it lasts', async () => {
    // Another restart of the crash-looping container: its flake is reconciled again.
    await cluster.setPodStatus(NS, 'crash-5d8f-aaaaa', {
      phase: 'Running',
      conditions: scheduled,
      containerStatuses: [waiting('crash', 'CrashLoopBackOff', 'back-off 80s', 4)],
    });
    // Then another instance fails; once its Event is there, the restart was seen too
    // (the pods' informer delivers in order, and one flake is reconciled at a time).
    await cluster.setPodStatus(NS, 'good-5d8f-aaaaa', {
      phase: 'Running',
      conditions: scheduled,
      containerStatuses: [waiting('good', 'CrashLoopBackOff', 'back-off 10s', 1)],
    });
    await untilEvent('Deployment', 'good', 'InstanceFailed');
    const crash = (await eventsAbout('Deployment', 'crash')).filter(
      (e) => e.reason === 'InstanceFailed',
    );
    expect(crash.map((e) => e.count)).toEqual([1]);
    expect((await builder.status(FLAKE)).instances.find((i) => i.name === 'crash')?.message).toBe(
      'crash loop: container crash restarted 4 times, last exit code 1 (Error) (pod crash-5d8f-aaaaa)',
    );
  });

  it('records a write that undoes a hand edit, and a prune', async () => {
    const good = (await cluster.deployment(NS, 'good'))!;
    await cluster.apps.patchNamespacedDeployment({
      namespace: NS,
      name: 'good',
      body: [{ op: 'replace', path: '/spec/replicas', value: 3 }],
    });
    const restored = await untilEvent('Deployment', 'good', 'Restored');
    expect(restored.message).toMatch(/: a change made outside Seed was undone$/);
    expect((await cluster.deployment(NS, 'good'))?.spec?.replicas).toBe(good.spec?.replicas);

    // A push without `gone` and with a new image for `img`, the one that could not be pulled.
    await builder.apply(
      generation(
        FLAKE,
        NAMES.filter((name) => name !== 'gone').map((name) => meta(name)),
        'b'.repeat(40),
        { img: `/nix/store/${'1'.repeat(32)}-seed-img-image` },
      ),
    );
    const pruned = await untilEvent('Deployment', 'gone', 'Pruned');
    expect(pruned.message).toMatch(/ has no instance gone: deleted/);
    expect(await cluster.deployment(NS, 'gone')).toBeUndefined();
    expect((await untilEvent('Deployment', 'img', 'Updated')).message).toMatch(/: updated$/);
    // The instances the push did not change were not written, so nothing tells of a write.
    expect((await eventsAbout('Deployment', 'good')).map((e) => e.reason)).not.toContain('Updated');
  });

  it('aggregates a repeated Event instead of adding one', async () => {
    const kube = KubeRepository.fromKubeconfig(api.kubeconfigPath);
    const involved = { apiVersion: 'v1', kind: 'ConfigMap', namespace: NS, name: 'seed-state' };
    await kube.recordEvent(involved, 'Warning', 'TestRepeat', 'first', 'same');
    await kube.recordEvent(involved, 'Warning', 'TestRepeat', 'second', 'same');
    const repeated = (await eventsAbout('ConfigMap', 'seed-state')).filter(
      (e) => e.reason === 'TestRepeat',
    );
    expect(repeated).toMatchObject([{ count: 2, message: 'second' }]);
  });
});
