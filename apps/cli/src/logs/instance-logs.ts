import {
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  MANAGED_BY_SEED,
  instanceObjectName,
} from '@seed/k8s-model';
import { appliedFlakeNamespace, type NamespaceLookup } from '../flake-namespace';

/**
 * `seed logs <flake> <instance>`: find the instance's pod in the flake's namespace and
 * read its container's log through the API server (`pods/<pod>/log`): the instance's
 * journal, which the guest forwards to its console, the container's stdout. No
 * Kubernetes client here: the port below is what it needs, `kube-logs.repository.ts`
 * implements it, and the CLI maps the error kinds to messages and exit codes.
 */

/** Why there is no log to show; `message` says it to a person. */
export class LogsError extends Error {
  override readonly name = 'LogsError';

  constructor(
    readonly kind:
      'invalid-flake' | 'unknown-flake' | 'unknown-instance' | 'no-pod' | 'no-log' | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

/** The API server answered an error (`status`), or could not be asked (`status` undefined). */
export class KubeCallError extends Error {
  override readonly name = 'KubeCallError';

  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface PodSummary {
  name: string;
  /** RFC 3339 */
  createdAt: string;
  phase: string;
  ready: boolean;
  terminating: boolean;
  nodeName?: string;
}

export interface LogOptions {
  /** Keep reading as the container writes (until it exits or `signal` aborts). */
  follow: boolean;
  /** Only the last N lines. */
  tailLines?: number;
  /** The previous (crashed) container's log instead of the current one's. */
  previous: boolean;
}

/** What reading an instance's log needs from the API server; errors are KubeCallErrors. */
export interface InstanceLogsPort extends NamespaceLookup {
  /** Names of the Deployments in `namespace` matching `labelSelector`. */
  deployments(namespace: string, labelSelector: string): Promise<string[]>;
  pods(namespace: string, labelSelector: string): Promise<PodSummary[]>;
  /** Streams the log to `write` until it ends (or `signal` aborts, which is not an error). */
  streamLog(
    target: { namespace: string; pod: string; container: string },
    options: LogOptions,
    write: (chunk: Uint8Array) => void,
    signal?: AbortSignal,
  ): Promise<void>;
}

export interface LogsRequest extends LogOptions {
  flake: string;
  instance: string;
}

export interface LogsTarget {
  namespace: string;
  pod: string;
  container: string;
  /** The node the pod runs on; undefined while it is not scheduled. */
  nodeName?: string;
  /** Every pod of the instance, newest first, the chosen one included. */
  pods: string[];
}

const OWNED = `${LABEL_MANAGED_BY}=${MANAGED_BY_SEED}`;

/** The namespace, pod and container whose log `seed logs` shows, or a LogsError saying why none. */
export async function findLogsTarget(
  kube: InstanceLogsPort,
  flake: string,
  instance: string,
): Promise<LogsTarget> {
  const namespace = await appliedFlakeNamespace(
    kube,
    flake,
    (kind, message) => new LogsError(kind, message),
    ask,
  );

  let name: string;
  try {
    name = instanceObjectName(instance);
  } catch (error) {
    throw new LogsError('unknown-instance', `no instance ${instance}: ${(error as Error).message}`);
  }
  const instances = await ask(() => kube.deployments(namespace, OWNED));
  if (!instances.includes(name))
    throw new LogsError(
      'unknown-instance',
      `flake ${flake} has no instance ${instance}; it has: ${instances.sort().join(', ') || 'none'}`,
    );

  const pods = await ask(() => kube.pods(namespace, `${OWNED},${LABEL_INSTANCE}=${name}`));
  const pod = choosePod(pods);
  if (!pod)
    throw new LogsError(
      'no-pod',
      `instance ${instance} has no pod yet (namespace ${namespace}); seed status ${flake} says why`,
    );
  return {
    namespace,
    pod: pod.name,
    container: name,
    nodeName: pod.nodeName,
    pods: sortNewestFirst(pods).map((p) => p.name),
  };
}

/**
 * Writes the log of the instance's pod to `write`: what `seed logs` does after choosing
 * the pod. Exported for tests that run a real pod (a kubelet): `await
 * streamInstanceLogs(kube, { flake, instance, follow: false, previous: false }, write)`.
 */
export async function streamInstanceLogs(
  kube: InstanceLogsPort,
  request: LogsRequest,
  write: (chunk: Uint8Array) => void,
  signal?: AbortSignal,
  onTarget: (target: LogsTarget) => void = () => undefined,
): Promise<LogsTarget> {
  const target = await findLogsTarget(kube, request.flake, request.instance);
  onTarget(target);
  // The API server answers an empty log for a pod on no node: say why there is none.
  if (!target.nodeName)
    throw new LogsError(
      'no-log',
      `pod ${target.pod} of instance ${request.instance} is not scheduled on a node yet, so it has no log; seed status ${request.flake} says why`,
    );
  try {
    await kube.streamLog(
      target,
      { follow: request.follow, tailLines: request.tailLines, previous: request.previous },
      write,
      signal,
    );
  } catch (error) {
    if (!(error instanceof KubeCallError) || error.status === undefined) throw unavailable(error);
    // The API server (or the kubelet behind it) has no such log: a container still being
    // created, no previous container, a node it cannot reach.
    throw new LogsError('no-log', noLogMessage(target, request, error.message));
  }
  return target;
}

/**
 * The pod `seed logs` reads: one not being deleted if any, ready before running before
 * pending, newest first (during a rolling update, the new pod once it is ready).
 */
export function choosePod(pods: readonly PodSummary[]): PodSummary | undefined {
  const rank = (pod: PodSummary) =>
    (pod.terminating ? 0 : 8) + (pod.ready ? 4 : 0) + (pod.phase === 'Running' ? 2 : 0);
  return sortNewestFirst(pods).sort((a, b) => rank(b) - rank(a))[0];
}

function sortNewestFirst(pods: readonly PodSummary[]): PodSummary[] {
  return [...pods].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

function noLogMessage(target: LogsTarget, request: LogsRequest, detail: string): string {
  const where = `pod ${target.pod} of instance ${request.instance}`;
  if (request.previous && /previous terminated container/.test(detail))
    return `${where} has no previous container: it has not restarted (${detail})`;
  return `cannot read the log of ${where}: ${detail}`;
}

async function ask<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw unavailable(error);
  }
}

function unavailable(error: unknown): LogsError | Error {
  if (error instanceof LogsError) return error;
  if (error instanceof KubeCallError)
    return new LogsError(
      'unavailable',
      error.status === undefined
        ? `cannot reach the Kubernetes API server: ${error.message} (check --kubeconfig or KUBECONFIG)`
        : `the Kubernetes API server answered ${error.status}: ${error.message}`,
    );
  return error as Error;
}
