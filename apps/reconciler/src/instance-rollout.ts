/**
 * How an instance is doing, from its Deployment and its current pods: `available`,
 * `progressing` (with what it waits for) or `failed` (with why). Pure and framework-free:
 * the shapes below are the few fields read, as the API server serves them, so the tests
 * feed it real-shaped JSON and the reconciler feeds it what client-node returns.
 *
 * Why pods and not only the Deployment: the Deployment controller reports a stuck rollout
 * only when its progress deadline passes (10 minutes by default), and then without the
 * cause. The kubelet writes the cause into the pod at once (a container waiting in
 * `ImagePullBackOff` or `CrashLoopBackOff`; the scheduler's `PodScheduled=False`).
 */

import { LABEL_INSTANCE } from '@seed/k8s-model';

/** Label the Deployment controller puts on a ReplicaSet and its pods. */
const POD_TEMPLATE_HASH = 'pod-template-hash';
/** Annotation the Deployment controller keeps equal on a Deployment and its newest ReplicaSet. */
const REVISION = 'deployment.kubernetes.io/revision';

export type Rollout = 'available' | 'progressing' | 'failed' | 'unknown';

export interface InstanceRollout {
  rollout: Rollout;
  /** One UpperCamelCase word (listed in docs/contracts.md); empty when available. */
  reason: string;
  /** For a person; empty when available. */
  message: string;
  readyReplicas: number;
}

export interface ObjectMetaView {
  name?: string;
  uid?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { uid: string; kind?: string; name?: string; controller?: boolean }[];
  creationTimestamp?: Date | string;
  deletionTimestamp?: Date | string;
}

export interface ConditionView {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface DeploymentView {
  metadata?: ObjectMetaView;
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    updatedReplicas?: number;
    conditions?: ConditionView[];
  };
}

export interface ReplicaSetView {
  metadata?: ObjectMetaView;
}

interface ContainerStateView {
  waiting?: { reason?: string; message?: string };
  running?: object;
  terminated?: { exitCode?: number; signal?: number; reason?: string; message?: string };
}

export interface ContainerStatusView {
  name: string;
  image?: string;
  ready?: boolean;
  restartCount?: number;
  state?: ContainerStateView;
  lastState?: ContainerStateView;
}

export interface PodView {
  metadata?: ObjectMetaView;
  spec?: { nodeName?: string; containers?: { name: string; image?: string }[] };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: ConditionView[];
    initContainerStatuses?: ContainerStatusView[];
    containerStatuses?: ContainerStatusView[];
  };
}

/** Waiting reasons of a container whose image cannot be had: retrying will not help. */
const IMAGE_FAILURES = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'ImageInspectError',
  'RegistryUnavailable',
]);
/** Waiting reasons of a container the runtime cannot create or start. */
const CREATE_FAILURES = new Set([
  'CreateContainerError',
  'CreateContainerConfigError',
  'RunContainerError',
  'PreCreateHookError',
  'PostStartHookError',
]);

/**
 * The rollout of one instance. `deployment` undefined means it does not exist; `pods`
 * undefined means they could not be read (the Deployment alone decides then). `pods` and
 * `replicaSets` may hold other instances' objects: only those the Deployment owns count.
 */
export function instanceRollout(
  deployment: DeploymentView | undefined,
  pods: readonly PodView[] | undefined,
  replicaSets: readonly ReplicaSetView[] = [],
): InstanceRollout {
  if (!deployment)
    return failed(
      'DeploymentMissing',
      'the Deployment does not exist (the next reconcile creates it)',
      0,
    );
  const status = deployment.status ?? {};
  const ready = status.readyReplicas ?? 0;
  const wanted = deployment.spec?.replicas ?? 1;

  if ((status.observedGeneration ?? 0) < (deployment.metadata?.generation ?? 0))
    return progressing(
      'DeploymentPending',
      'waiting for the Deployment controller to take up the new spec',
      ready,
    );

  const current = pods === undefined ? undefined : currentPods(deployment, pods, replicaSets);
  for (const pod of current ?? []) {
    const failure = podFailure(pod);
    if (failure) return failed(failure.reason, failure.message, ready);
  }

  const conditions = status.conditions ?? [];
  const deadline = conditions.find(
    (c) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded',
  );
  if (deadline)
    return failed(
      'ProgressDeadlineExceeded',
      deadline.message || 'the rollout did not progress within its deadline',
      ready,
    );
  const replicaFailure = conditions.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
  if (replicaFailure)
    return failed(
      replicaFailure.reason || 'ReplicaFailure',
      `cannot create the pod: ${replicaFailure.message ?? 'no reason given'}`,
      ready,
    );

  // As `kubectl rollout status`: enough updated pods and no old one left. During a rolling
  // update the old pod is available while the new one is not ready, so "updated" and
  // "available" alone would call a new version that never becomes ready available.
  const updated = status.updatedReplicas ?? 0;
  if (
    updated >= wanted &&
    (status.replicas ?? 0) <= updated &&
    (status.availableReplicas ?? 0) >= wanted
  )
    return { rollout: 'available', reason: '', message: '', readyReplicas: ready };

  const waiting = current === undefined ? undefined : podWaiting(current);
  if (waiting) return progressing(waiting.reason, waiting.message, ready);
  const unread = pods === undefined ? ' (its pods could not be read)' : '';
  return progressing(
    'RollingOut',
    `${status.availableReplicas ?? 0} of ${wanted} updated pods available${unread}`,
    ready,
  );
}

/**
 * The pods of the Deployment's newest ReplicaSet, not being deleted and not finished.
 * Without that ReplicaSet (not created yet, or not given), every such pod of the
 * Deployment's selector: with the `recreate` strategy old and new pods never overlap.
 */
export function currentPods(
  deployment: DeploymentView,
  pods: readonly PodView[],
  replicaSets: readonly ReplicaSetView[],
): PodView[] {
  const instance = deployment.metadata?.labels?.[LABEL_INSTANCE];
  const live = pods.filter(
    (pod) =>
      !pod.metadata?.deletionTimestamp &&
      pod.status?.phase !== 'Succeeded' &&
      pod.status?.phase !== 'Failed' &&
      (instance === undefined || pod.metadata?.labels?.[LABEL_INSTANCE] === instance),
  );
  const revision = deployment.metadata?.annotations?.[REVISION];
  const uid = deployment.metadata?.uid;
  const newest = replicaSets.find(
    (rs) =>
      revision !== undefined &&
      rs.metadata?.annotations?.[REVISION] === revision &&
      rs.metadata.ownerReferences?.some((owner) => owner.uid === uid && owner.controller),
  );
  const ordered = [...live].sort((a, b) => created(b) - created(a));
  if (!newest?.metadata) return ordered;
  const hash = newest.metadata.labels?.[POD_TEMPLATE_HASH];
  return ordered.filter(
    (pod) =>
      pod.metadata?.ownerReferences?.some((owner) => owner.uid === newest.metadata?.uid) ||
      (hash !== undefined && pod.metadata?.labels?.[POD_TEMPLATE_HASH] === hash),
  );
}

/** Why a pod cannot become ready without a change to the flake or the cluster, if it cannot. */
function podFailure(pod: PodView): { reason: string; message: string } | undefined {
  const name = pod.metadata?.name ?? 'the pod';
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable')
    return {
      reason: 'Unschedulable',
      message: `not schedulable: ${scheduled.message || 'no node fits'} (pod ${name})`,
    };
  for (const container of containers(pod)) {
    const waiting = container.state?.waiting;
    const why = waiting?.reason ?? '';
    const detail = waiting?.message ? `: ${waiting.message}` : '';
    if (IMAGE_FAILURES.has(why)) {
      const image = container.image || imageOf(pod, container.name);
      return {
        reason: why,
        message: `image not found or not pullable: ${image}${detail} (pod ${name})`,
      };
    }
    if (CREATE_FAILURES.has(why))
      return {
        reason: why,
        message: `cannot create or start container ${container.name}${detail} (pod ${name})`,
      };
    if (why === 'CrashLoopBackOff')
      return {
        reason: why,
        message: `crash loop: container ${container.name} ${restarts(container)} (pod ${name})`,
      };
  }
  return undefined;
}

/** What the newest current pod waits for, when it says. */
function podWaiting(pods: readonly PodView[]): { reason: string; message: string } | undefined {
  const pod = pods[0];
  if (!pod) return { reason: 'PodPending', message: 'waiting for a pod to be created' };
  const name = pod.metadata?.name ?? 'the pod';
  if (!pod.spec?.nodeName)
    return { reason: 'PodPending', message: `waiting for pod ${name} to be scheduled` };
  for (const container of containers(pod)) {
    const waiting = container.state?.waiting;
    if (waiting)
      return {
        reason: waiting.reason || 'ContainerWaiting',
        message: `pod ${name}: container ${container.name} ${waiting.reason || 'waiting'}${waiting.message ? `: ${waiting.message}` : ''}`,
      };
    if (container.state?.terminated)
      return {
        reason: 'ContainerExited',
        message: `pod ${name}: container ${container.name} exited (${exitOf(container.state.terminated)}); restarting`,
      };
    if (container.state?.running && !container.ready) {
      const restarted = container.restartCount ? `; ${restarts(container)}` : '';
      return {
        reason: 'NotReady',
        message: `pod ${name}: container ${container.name} is running, waiting for it to become ready${restarted}`,
      };
    }
  }
  if (!pod.status?.containerStatuses?.length)
    return { reason: 'PodPending', message: `pod ${name} is ${pod.status?.phase ?? 'Pending'}` };
  return undefined;
}

function containers(pod: PodView): ContainerStatusView[] {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
}

function imageOf(pod: PodView, container: string): string {
  return pod.spec?.containers?.find((c) => c.name === container)?.image ?? 'the image';
}

function restarts(container: ContainerStatusView): string {
  const count = container.restartCount ?? 0;
  const last = container.lastState?.terminated;
  const times = `restarted ${count} time${count === 1 ? '' : 's'}`;
  return last ? `${times}, last ${exitOf(last)}` : times;
}

/** Longest termination message quoted in a status: a line of `seed status`, not a log. */
const TERMINATION_MESSAGE_CHARS = 500;

/**
 * How the container ended, with its termination message when it left one: what the
 * program said of its own failure (the kubelet keeps the container's
 * /dev/termination-log, e.g. an instance's `seed-secrets` naming the secret it could not
 * install; docs/secrets.md).
 */
function exitOf(terminated: NonNullable<ContainerStateView['terminated']>): string {
  const code = terminated.exitCode ?? terminated.signal ?? '?';
  const said = (terminated.message ?? '').replace(/\s+/g, ' ').trim();
  const quoted =
    said.length > TERMINATION_MESSAGE_CHARS ? `${said.slice(0, TERMINATION_MESSAGE_CHARS)}…` : said;
  return `exit code ${code}${terminated.reason ? ` (${terminated.reason})` : ''}${quoted ? `: ${quoted}` : ''}`;
}

function created(pod: PodView): number {
  const at = pod.metadata?.creationTimestamp;
  return at === undefined ? 0 : new Date(at).getTime();
}

function failed(reason: string, message: string, readyReplicas: number): InstanceRollout {
  return { rollout: 'failed', reason, message, readyReplicas };
}

function progressing(reason: string, message: string, readyReplicas: number): InstanceRollout {
  return { rollout: 'progressing', reason, message, readyReplicas };
}
