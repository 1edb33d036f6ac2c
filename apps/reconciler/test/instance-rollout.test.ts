// instanceRollout over Deployments, ReplicaSets and pods shaped as the API server serves
// them (fields copied from `kubectl get -o json` of each situation, trimmed).
import { describe, expect, it } from '@jest/globals';
import {
  instanceRollout,
  type DeploymentView,
  type PodView,
  type ReplicaSetView,
} from '../src/instance-rollout';

const IMAGE = 'nix:0/nix/store/00000000000000000000000000000000-seed-web-image';
const LABELS = { 'seed.loom.farm/managed-by': 'seed', 'seed.loom.farm/instance': 'web' };

function deployment(
  status: NonNullable<DeploymentView['status']>,
  generation = 2,
  revision = '2',
): DeploymentView {
  return {
    metadata: {
      name: 'web',
      uid: 'd-uid',
      generation,
      labels: LABELS,
      annotations: { 'deployment.kubernetes.io/revision': revision },
    },
    spec: { replicas: 1 },
    status: { observedGeneration: generation, ...status },
  };
}

const progressingCondition = {
  type: 'Progressing',
  status: 'True',
  reason: 'ReplicaSetUpdated',
  message: 'ReplicaSet "web-7d9f" is progressing.',
};
const unavailable = {
  replicas: 1,
  updatedReplicas: 1,
  unavailableReplicas: 1,
  conditions: [
    {
      type: 'Available',
      status: 'False',
      reason: 'MinimumReplicasUnavailable',
      message: 'Deployment does not have minimum availability.',
    },
    progressingCondition,
  ],
};

function replicaSet(hash: string, revision: string): ReplicaSetView {
  return {
    metadata: {
      name: `web-${hash}`,
      uid: `rs-${hash}`,
      labels: { ...LABELS, 'pod-template-hash': hash },
      annotations: { 'deployment.kubernetes.io/revision': revision },
      ownerReferences: [{ uid: 'd-uid', kind: 'Deployment', name: 'web', controller: true }],
    },
  };
}

function pod(
  status: NonNullable<PodView['status']>,
  options: { hash?: string; name?: string; nodeName?: string | null; created?: string } = {},
): PodView {
  const hash = options.hash ?? '7d9f';
  return {
    metadata: {
      name: options.name ?? `web-${hash}-x2x5q`,
      labels: { ...LABELS, 'pod-template-hash': hash },
      ownerReferences: [
        { uid: `rs-${hash}`, kind: 'ReplicaSet', name: `web-${hash}`, controller: true },
      ],
      creationTimestamp: options.created ?? '2026-12-02T10:00:00Z',
    },
    spec: {
      ...(options.nodeName === null ? {} : { nodeName: options.nodeName ?? 'node-1' }),
      containers: [{ name: 'web', image: IMAGE }],
    },
    status,
  };
}

const scheduled = [
  { type: 'PodScheduled', status: 'True' },
  { type: 'Initialized', status: 'True' },
  { type: 'Ready', status: 'False', reason: 'ContainersNotReady' },
];

function waitingPod(reason: string, message?: string, extra: object = {}): PodView {
  return pod({
    phase: 'Pending',
    conditions: scheduled,
    containerStatuses: [
      {
        name: 'web',
        image: IMAGE,
        ready: false,
        restartCount: 0,
        state: { waiting: { reason, ...(message ? { message } : {}) } },
        ...extra,
      },
    ],
  });
}

describe('instanceRollout', () => {
  it('is available once the current spec has its updated replicas available', () => {
    const d = deployment({
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
      conditions: [
        { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
        { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
      ],
    });
    const running = pod({
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [
        { name: 'web', ready: true, restartCount: 0, state: { running: { startedAt: 'x' } } },
      ],
    });
    expect(instanceRollout(d, [running], [replicaSet('7d9f', '2')])).toEqual({
      rollout: 'available',
      reason: '',
      message: '',
      readyReplicas: 1,
    });
  });

  it('fails when the Deployment is missing', () => {
    expect(instanceRollout(undefined, [])).toMatchObject({
      rollout: 'failed',
      reason: 'DeploymentMissing',
    });
  });

  it('is progressing while the controller has not seen the new spec', () => {
    const d = deployment({ availableReplicas: 1, updatedReplicas: 1 }, 3);
    d.status!.observedGeneration = 2;
    expect(instanceRollout(d, [waitingPod('ImagePullBackOff')])).toMatchObject({
      rollout: 'progressing',
      reason: 'DeploymentPending',
    });
  });

  const failures: [string, PodView, string, RegExp][] = [
    [
      'an image that cannot be pulled',
      waitingPod(
        'ImagePullBackOff',
        `Back-off pulling image "${IMAGE}": ErrImagePull: store path not found`,
      ),
      'ImagePullBackOff',
      /^image not found or not pullable: nix:0\/nix\/store\/0+-seed-web-image: Back-off pulling image .*store path not found \(pod web-7d9f-x2x5q\)$/,
    ],
    [
      'the first pull error',
      waitingPod('ErrImagePull', 'rpc error: code = NotFound'),
      'ErrImagePull',
      /^image not found or not pullable: nix:0.*rpc error: code = NotFound/,
    ],
    [
      'an invalid image name',
      waitingPod('InvalidImageName', 'Failed to apply default image tag'),
      'InvalidImageName',
      /^image not found or not pullable: /,
    ],
    [
      'a container the runtime cannot create',
      waitingPod('CreateContainerError', 'failed to create containerd container: snapshot missing'),
      'CreateContainerError',
      /^cannot create or start container web: failed to create containerd container: snapshot missing/,
    ],
    [
      'a crash loop',
      waitingPod('CrashLoopBackOff', 'back-off 40s restarting failed container=web', {
        restartCount: 3,
        lastState: { terminated: { exitCode: 1, reason: 'Error' } },
      }),
      'CrashLoopBackOff',
      /^crash loop: container web restarted 3 times, last exit code 1 \(Error\) \(pod web-7d9f-x2x5q\)$/,
    ],
    [
      // What nix/modules/secrets.nix leaves in /dev/termination-log before it stops the
      // instance: the kubelet carries it into the container's last state.
      'an instance stopped by a secret it could not install',
      waitingPod('CrashLoopBackOff', 'back-off 10s restarting failed container=web', {
        restartCount: 1,
        lastState: {
          terminated: {
            exitCode: 1,
            reason: 'Error',
            message:
              'seed-secrets: secret db-password: cannot decrypt /nix/store/0abc-db.enc.yaml: Failed to get the data key required to decrypt the SOPS file.\n',
          },
        },
      }),
      'CrashLoopBackOff',
      /^crash loop: container web restarted 1 time, last exit code 1 \(Error\): seed-secrets: secret db-password: cannot decrypt \/nix\/store\/0abc-db\.enc\.yaml: Failed to get the data key required to decrypt the SOPS file\. \(pod web-7d9f-x2x5q\)$/,
    ],
    [
      'a pod no node can take',
      pod(
        {
          phase: 'Pending',
          conditions: [
            {
              type: 'PodScheduled',
              status: 'False',
              reason: 'Unschedulable',
              message:
                '0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available.',
            },
          ],
        },
        { nodeName: null },
      ),
      'Unschedulable',
      /^not schedulable: 0\/1 nodes are available: 1 Insufficient memory\./,
    ],
  ];

  it.each(failures)('fails on %s', (_what, failing, reason, message) => {
    const status = instanceRollout(deployment(unavailable), [failing], [replicaSet('7d9f', '2')]);
    expect(status).toMatchObject({ rollout: 'failed', reason, readyReplicas: 0 });
    expect(status.message).toMatch(message);
  });

  it('fails with the progress deadline when the pods say nothing more', () => {
    const d = deployment({
      ...unavailable,
      conditions: [
        unavailable.conditions[0]!,
        {
          type: 'Progressing',
          status: 'False',
          reason: 'ProgressDeadlineExceeded',
          message: 'ReplicaSet "web-7d9f" has timed out progressing.',
        },
      ],
    });
    expect(instanceRollout(d, [waitingPod('ContainerCreating')])).toEqual({
      rollout: 'failed',
      reason: 'ProgressDeadlineExceeded',
      message: 'ReplicaSet "web-7d9f" has timed out progressing.',
      readyReplicas: 0,
    });
  });

  it('fails when the ReplicaSet cannot create pods', () => {
    const d = deployment({
      replicas: 0,
      conditions: [
        {
          type: 'ReplicaFailure',
          status: 'True',
          reason: 'FailedCreate',
          message: 'pods "web-7d9f-" is forbidden: exceeded quota: compute',
        },
        progressingCondition,
      ],
    });
    expect(instanceRollout(d, [])).toMatchObject({
      rollout: 'failed',
      reason: 'FailedCreate',
      message: 'cannot create the pod: pods "web-7d9f-" is forbidden: exceeded quota: compute',
    });
  });

  const waits: [string, PodView[], string, RegExp][] = [
    ['no pod yet', [], 'PodPending', /^waiting for a pod to be created$/],
    [
      'a pod not scheduled yet',
      [pod({ phase: 'Pending' }, { nodeName: null })],
      'PodPending',
      /^waiting for pod web-7d9f-x2x5q to be scheduled$/,
    ],
    [
      'a container being created',
      [waitingPod('ContainerCreating')],
      'ContainerCreating',
      /^pod web-7d9f-x2x5q: container web ContainerCreating$/,
    ],
    [
      'a running container not ready yet',
      [
        pod({
          phase: 'Running',
          conditions: scheduled,
          containerStatuses: [
            {
              name: 'web',
              ready: false,
              restartCount: 1,
              state: { running: {} },
              lastState: { terminated: { exitCode: 137, reason: 'OOMKilled' } },
            },
          ],
        }),
      ],
      'NotReady',
      /waiting for it to become ready; restarted 1 time, last exit code 137 \(OOMKilled\)$/,
    ],
    [
      'a container that just exited',
      [
        pod({
          phase: 'Running',
          containerStatuses: [
            { name: 'web', ready: false, state: { terminated: { exitCode: 2, reason: 'Error' } } },
          ],
        }),
      ],
      'ContainerExited',
      /exited \(exit code 2 \(Error\)\); restarting$/,
    ],
    [
      'a container that just exited saying why, at length',
      [
        pod({
          phase: 'Running',
          containerStatuses: [
            {
              name: 'web',
              ready: false,
              state: {
                terminated: {
                  exitCode: 1,
                  reason: 'Error',
                  message: `seed-secrets: secret tls: ${'x'.repeat(4000)}`,
                },
              },
            },
          ],
        }),
      ],
      'ContainerExited',
      // The kubelet keeps up to 4096 bytes; a status line quotes the start of it.
      /exited \(exit code 1 \(Error\): seed-secrets: secret tls: x{474}…\); restarting$/,
    ],
  ];

  it.each(waits)('is progressing with %s', (_what, pods, reason, message) => {
    const status = instanceRollout(deployment(unavailable), pods, [replicaSet('7d9f', '2')]);
    expect(status).toMatchObject({ rollout: 'progressing', reason });
    expect(status.message).toMatch(message);
  });

  it("looks only at the newest ReplicaSet's pods during a rolling update", () => {
    const old = waitingPod('CrashLoopBackOff', 'back-off', { restartCount: 9 });
    old.metadata = {
      ...old.metadata,
      name: 'web-5c4b-abcde',
      labels: { ...LABELS, 'pod-template-hash': '5c4b' },
      ownerReferences: [{ uid: 'rs-5c4b', controller: true }],
    };
    const fresh = waitingPod('ContainerCreating');
    const sets = [replicaSet('5c4b', '1'), replicaSet('7d9f', '2')];
    expect(instanceRollout(deployment(unavailable), [old, fresh], sets)).toMatchObject({
      rollout: 'progressing',
      reason: 'ContainerCreating',
    });
    // The new version is the broken one: its failure shows although the old pod runs.
    const running = pod(
      {
        phase: 'Running',
        containerStatuses: [{ name: 'web', ready: true, state: { running: {} } }],
      },
      { hash: '5c4b' },
    );
    const pulling = waitingPod('ImagePullBackOff');
    expect(instanceRollout(deployment(unavailable), [running, pulling], sets).reason).toBe(
      'ImagePullBackOff',
    );
  });

  it('is progressing while a rolling update waits for its new pod, though the old one is available', () => {
    // Read from a real node: a new version that runs but never listens.
    const d = deployment({
      replicas: 2,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
      conditions: [
        { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
        progressingCondition,
      ],
    });
    const old = pod(
      {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: [{ name: 'web', ready: true, state: { running: {} } }],
      },
      { hash: '5c4b' },
    );
    const fresh = pod({
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady' }],
      containerStatuses: [
        { name: 'web', ready: false, restartCount: 0, state: { running: { startedAt: 'x' } } },
      ],
    });
    const sets = [replicaSet('5c4b', '1'), replicaSet('7d9f', '2')];
    expect(instanceRollout(d, [old, fresh], sets)).toEqual({
      rollout: 'progressing',
      reason: 'NotReady',
      message: 'pod web-7d9f-x2x5q: container web is running, waiting for it to become ready',
      readyReplicas: 1,
    });
  });

  it('ignores pods being deleted, finished pods and other instances', () => {
    const deleting = waitingPod('CrashLoopBackOff');
    deleting.metadata!.deletionTimestamp = '2026-12-02T10:05:00Z';
    const evicted = pod({ phase: 'Failed', reason: 'Evicted', message: 'low on memory' });
    const other = waitingPod('ImagePullBackOff');
    other.metadata!.labels = { ...LABELS, 'seed.loom.farm/instance': 'db' };
    expect(instanceRollout(deployment(unavailable), [deleting, evicted, other])).toMatchObject({
      rollout: 'progressing',
      reason: 'PodPending',
    });
  });

  it('uses every pod of the instance when no ReplicaSet is known', () => {
    expect(
      instanceRollout(deployment(unavailable), [waitingPod('CrashLoopBackOff')]),
    ).toMatchObject({ rollout: 'failed', reason: 'CrashLoopBackOff' });
  });

  it('still answers from the Deployment when the pods could not be read', () => {
    expect(instanceRollout(deployment(unavailable), undefined)).toEqual({
      rollout: 'progressing',
      reason: 'RollingOut',
      message: '0 of 1 updated pods available (its pods could not be read)',
      readyReplicas: 0,
    });
  });
});
