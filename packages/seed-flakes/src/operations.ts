import { hostname } from 'node:os';
import {
  ApiException,
  AuthenticationV1Api,
  CoreV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { SEED_FLAKE_API, type SeedFlakeResource } from '@seed/contracts';
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
