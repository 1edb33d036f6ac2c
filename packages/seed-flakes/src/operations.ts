import { hostname } from 'node:os';
import {
  ApiException,
  AuthenticationV1Api,
  CoreV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import {
  DELETED_BY_ANNOTATION,
  REBUILD_ANNOTATION,
  SEED_FLAKE_API,
  type RebuildAnswer,
  type RebuildRequest,
  type SeedFlakeResource,
} from '@seed/contracts';
import { SeedFlakeClient } from './seed-flakes';

/** An operation on a SeedFlake that cannot be done, said for the operator. */
export class SeedFlakeOperationError extends Error {
  override readonly name = 'SeedFlakeOperationError';
}

/** What a rollback asks of the reconciler (platform-client's ReconcilerApi). */
export interface RollbackPort {
  rollback(flakeUri: string, to: string): Promise<{ changed: boolean; generation: string }>;
}

export interface SuspensionChange {
  seedFlake: string;
  flake: string;
  /** False when it already was as asked: nothing was written. */
  changed: boolean;
  /** The operator as the API server knows them (SelfSubjectReview). */
  by: string;
}

// Events of a cluster-scoped object live in `default`, where `kubectl describe` looks.
const EVENTS_NAMESPACE = 'default';
const COMPONENT = 'seed-cli';

/**
 * Suspends or resumes a flake: sets its SeedFlake's `spec.suspend` and records an Event
 * on it naming who asked (the API server's name for the caller) and why. `target` is the
 * SeedFlake's name or its flake URI.
 */
export async function setSuspended(
  config: KubeConfig,
  target: string,
  suspend: boolean,
  reason?: string,
): Promise<SuspensionChange> {
  const flakes = new SeedFlakeClient(config, COMPONENT);
  const resource = await findSeedFlake(flakes, target);
  const by = await caller(config);
  const name = resource.metadata.name;
  if ((resource.spec.suspend ?? false) === suspend)
    return { seedFlake: name, flake: resource.spec.flake, changed: false, by };
  const updated = await kubeCall(() => flakes.patch(name, { spec: { suspend } }));
  const verb = suspend ? 'suspended' : 'resumed';
  await recordEvent(
    config,
    updated,
    suspend ? 'Suspended' : 'Resumed',
    `${verb} by ${by}${reason ? `: ${reason}` : ''}`,
  );
  return { seedFlake: name, flake: resource.spec.flake, changed: true, by };
}

export interface Rollback {
  seedFlake: string;
  flake: string;
  generation: string;
  changed: boolean;
  by: string;
}

/**
 * Rolls a flake back: the reconciler applies one of its kept generations again (no
 * build), then its SeedFlake is suspended so the next push does not undo it (`seed
 * resume` lifts that); an Event names who asked.
 */
export async function rollBack(
  config: KubeConfig,
  reconciler: RollbackPort,
  target: string,
  to: string,
): Promise<Rollback> {
  const flakes = new SeedFlakeClient(config, COMPONENT);
  const resource = await findSeedFlake(flakes, target);
  const by = await caller(config);
  const { changed, generation } = await reconciler.rollback(resource.spec.flake, to);
  const name = resource.metadata.name;
  const updated = await kubeCall(() => flakes.patch(name, { spec: { suspend: true } }));
  await recordEvent(
    config,
    updated,
    'RolledBack',
    `rolled back to generation ${generation} by ${by}; suspended until seed resume`,
  );
  return { seedFlake: name, flake: resource.spec.flake, generation, changed, by };
}

export interface Rebuild {
  seedFlake: string;
  flake: string;
  /** The commit queued: the one asked for, or the branch head the webhook read. */
  commit: string;
  jobId: string;
  by: string;
}

/**
 * Asks for a build now (of `commit`, or the branch head): the request is an annotation on
 * the SeedFlake, which the webhook answers in `status.lastHandledRebuild`; an Event names
 * who asked. Waits up to `waitMs` for the answer. A suspended flake is refused (a build
 * would undo what suspended it), as is a request the webhook refuses.
 */
export async function requestRebuild(
  config: KubeConfig,
  target: string,
  options: { commit?: string; waitMs: number; pollMs?: number },
): Promise<Rebuild> {
  const flakes = new SeedFlakeClient(config, COMPONENT);
  const resource = await findSeedFlake(flakes, target);
  const name = resource.metadata.name;
  if (resource.spec.suspend)
    throw new SeedFlakeOperationError(
      `SeedFlake ${name} is suspended: a rebuild would undo what suspended it (a rollback); seed resume ${name} first`,
    );
  const by = await caller(config);
  const request: RebuildRequest = {
    id: `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`,
    ...(options.commit !== undefined && { commit: options.commit }),
    by,
  };
  const updated = await kubeCall(() =>
    flakes.patch(name, {
      metadata: { annotations: { [REBUILD_ANNOTATION]: JSON.stringify(request) } },
    }),
  );
  await recordEvent(
    config,
    updated,
    'RebuildRequested',
    `rebuild of ${options.commit ?? 'the branch head'} requested by ${by}`,
  );
  const answer = await awaitAnswer(flakes, name, request.id, options.waitMs, options.pollMs ?? 250);
  if (answer.error !== undefined || answer.jobId === undefined || answer.commit === undefined)
    throw new SeedFlakeOperationError(
      `the webhook refused the rebuild of ${name}: ${answer.error ?? 'no build was queued'}`,
    );
  return {
    seedFlake: name,
    flake: resource.spec.flake,
    commit: answer.commit,
    jobId: answer.jobId,
    by,
  };
}

async function awaitAnswer(
  flakes: SeedFlakeClient,
  name: string,
  id: string,
  waitMs: number,
  pollMs: number,
): Promise<RebuildAnswer> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const answer = (await kubeCall(() => flakes.get(name)))?.status?.lastHandledRebuild;
    if (answer?.id === id) return answer;
    if (Date.now() >= deadline)
      throw new SeedFlakeOperationError(
        `no webhook answered the rebuild request ${id} within ${Math.round(waitMs / 1000)} s; it stays on SeedFlake ${name} and is taken when a webhook runs (kubectl get seedflake ${name} -o jsonpath='{.status.lastHandledRebuild}')`,
      );
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

export interface Removal {
  seedFlake: string;
  flake: string;
  by: string;
}

/**
 * Deletes a SeedFlake, first naming who asked on it (the reconciler's removal Event
 * repeats it) and in an Event. Its flake is removed after the reconciler's grace period;
 * its volume claims stay.
 */
export async function removeSeedFlake(config: KubeConfig, target: string): Promise<Removal> {
  const flakes = new SeedFlakeClient(config, COMPONENT);
  const resource = await findSeedFlake(flakes, target);
  const name = resource.metadata.name;
  const by = await caller(config);
  const updated = await kubeCall(() =>
    flakes.patch(name, { metadata: { annotations: { [DELETED_BY_ANNOTATION]: by } } }),
  );
  await recordEvent(config, updated, 'RemovalRequested', `deleted by ${by}`);
  await kubeCall(() => flakes.delete(name));
  return { seedFlake: name, flake: resource.spec.flake, by };
}

/** An Event on a SeedFlake, where `kubectl describe seedflake` shows it. */
async function recordEvent(
  config: KubeConfig,
  resource: SeedFlakeResource,
  reason: string,
  message: string,
): Promise<void> {
  const now = new Date();
  await kubeCall(() =>
    config.makeApiClient(CoreV1Api).createNamespacedEvent({
      namespace: EVENTS_NAMESPACE,
      body: {
        metadata: { generateName: `${resource.metadata.name}.` },
        involvedObject: {
          apiVersion: SEED_FLAKE_API.apiVersion,
          kind: SEED_FLAKE_API.kind,
          name: resource.metadata.name,
          uid: resource.metadata.uid,
        },
        type: 'Normal',
        reason,
        message,
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        reportingInstance: hostname(),
        action: reason,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    }),
  );
}

async function findSeedFlake(flakes: SeedFlakeClient, target: string): Promise<SeedFlakeResource> {
  if (!target.includes(':')) {
    const resource = await kubeCall(() => flakes.get(target));
    if (resource) return resource;
    throw new SeedFlakeOperationError(`no SeedFlake named ${target} (kubectl get seedflakes)`);
  }
  const matching = (await kubeCall(() => flakes.list())).filter((f) => f.spec.flake === target);
  if (matching.length === 1) return matching[0]!;
  throw new SeedFlakeOperationError(
    matching.length === 0
      ? `no SeedFlake serves ${target} (kubectl get seedflakes)`
      : `SeedFlakes ${matching.map((f) => f.metadata.name).join(', ')} all serve ${target}: name one`,
  );
}

/** Who the API server says the caller is; a cluster without SelfSubjectReview says less. */
async function caller(config: KubeConfig): Promise<string> {
  try {
    const review = await config
      .makeApiClient(AuthenticationV1Api)
      .createSelfSubjectReview({ body: {} });
    return review.status?.userInfo?.username ?? 'an unnamed user';
  } catch {
    return `kubeconfig user ${config.getCurrentUser()?.name ?? 'unknown'}`;
  }
}

/** Runs an API call; the API server's refusal becomes its message. */
async function kubeCall<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    const body = typeof error.body === 'string' ? error.body : JSON.stringify(error.body);
    let message = body;
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      // not JSON: the text is the message
    }
    throw new SeedFlakeOperationError(`the API server answered ${error.code}: ${message}`);
  }
}
