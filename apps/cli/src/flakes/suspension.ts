import { hostname } from 'node:os';
import { AuthenticationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { SEED_FLAKE_API, type SeedFlakeResource } from '@seed/contracts';
import { SeedFlakeClient } from '@seed/seed-flakes';
import { kubeCall } from '../kube-call';

/** A SeedFlake that cannot be found, said for the operator. */
export class SuspensionError extends Error {
  override readonly name = 'SuspensionError';
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
  const resource = await find(flakes, target);
  const by = await caller(config);
  const name = resource.metadata.name;
  if ((resource.spec.suspend ?? false) === suspend)
    return { seedFlake: name, flake: resource.spec.flake, changed: false, by };
  const updated = await kubeCall(() => flakes.patch(name, { spec: { suspend } }));
  const verb = suspend ? 'suspended' : 'resumed';
  const now = new Date();
  await kubeCall(() =>
    config.makeApiClient(CoreV1Api).createNamespacedEvent({
      namespace: EVENTS_NAMESPACE,
      body: {
        metadata: { generateName: `${name}.` },
        involvedObject: {
          apiVersion: SEED_FLAKE_API.apiVersion,
          kind: SEED_FLAKE_API.kind,
          name,
          uid: updated.metadata.uid,
        },
        type: 'Normal',
        reason: suspend ? 'Suspended' : 'Resumed',
        message: `${verb} by ${by}${reason ? `: ${reason}` : ''}`,
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        reportingInstance: hostname(),
        action: suspend ? 'Suspend' : 'Resume',
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    }),
  );
  return { seedFlake: name, flake: resource.spec.flake, changed: true, by };
}

async function find(flakes: SeedFlakeClient, target: string): Promise<SeedFlakeResource> {
  if (!target.includes(':')) {
    const resource = await kubeCall(() => flakes.get(target));
    if (resource) return resource;
    throw new SuspensionError(`no SeedFlake named ${target} (kubectl get seedflakes)`);
  }
  const matching = (await kubeCall(() => flakes.list())).filter((f) => f.spec.flake === target);
  if (matching.length === 1) return matching[0]!;
  throw new SuspensionError(
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
