import {
  DEFAULT_FLAKE_QUOTA,
  canonicalJson,
  deriveNamespace,
  flakeQuotaSchema,
  parseFlakeRef,
  quotaExcess,
  redactFlakeRef,
  parseSeedMeta,
  tpmRequestName,
  type ApplyGenerationRequest__Output,
  type FlakeQuota,
  type SeedMeta,
  type FlakeStatus,
  type InstanceStatus,
} from '@seed/contracts';
import { instanceObjectName, renderNamespace } from '@seed/k8s-model';
import type { Logger } from '@seed/service-kit';
import type { Controller } from './controller/controller';
import type { EventRecorder } from './event-recorder';
import {
  STATE_CONFIG_MAP,
  foreignOwner,
  type DesiredGeneration,
  type FlakeState,
} from './flake-state';
import { OWNED_SELECTOR } from './flake.reconciler';
import {
  instanceRollout,
  type DeploymentView,
  type InstanceRollout,
  type PodView,
  type ReplicaSetView,
} from './instance-rollout';
import { tpmRollout, type TpmRequestView } from './instance-tpm';
import { TerminalError } from './controller/work-queue';
import type { ReconcilerMetrics } from './metrics';
import type { FlakeStateRepository } from './repositories/flake-state.repository';
import {
  KubeConflict,
  KubeRejected,
  type KubeRepository,
  type KubernetesObject,
} from './repositories/kube.repository';

/** Why a request was refused; the gRPC adapter maps each kind to a status code. */
export class GenerationError extends Error {
  override readonly name = 'GenerationError';

  constructor(
    readonly kind: 'invalid' | 'not-found' | 'failed' | 'foreign' | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

/**
 * How long a replica that does not lead waits for the leader's reconcile to show in
 * `seed-state` before answering UNAVAILABLE (the builder retries; its deadline is 30 s).
 */
const FOLLOWER_WAIT_MS = 25_000;

/** Reads and writes of a state that another writer changed meanwhile, before giving up. */
const STATE_WRITE_ATTEMPTS = 3;

/**
 * Status reads in flight at once: flakes in `list`, and each flake's Deployments, so a
 * listing asks the API server at most this squared at a time (64), whatever the number
 * of flakes and instances.
 */
const READS_AT_ONCE = 8;

/** `map` over the items with at most `limit` calls in flight, the results in item order. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  map: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++)
      results[index] = await map(items[index]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The two calls the reconciler serves: take a generation (validate it, record it as the
 * flake's desired state, and wait for the flake's reconcile), and report a flake's status.
 * Every replica answers both: the one leading reconciles the flake itself, the others
 * store the desired state (the leader's watch picks it up) and wait for its outcome in
 * `seed-state`.
 */
export class GenerationsService {
  constructor(
    private readonly states: FlakeStateRepository,
    private readonly controller: Controller,
    private readonly kube: KubeRepository,
    private readonly events: EventRecorder,
    private readonly metrics: ReconcilerMetrics,
    private readonly logger: Logger,
  ) {}

  async apply(
    request: ApplyGenerationRequest__Output,
  ): Promise<{ changed: boolean; generation: string }> {
    const quota = validate(request);
    const namespace = request.namespace;
    const unavailable = (error: Error) => {
      throw new GenerationError('unavailable', error.message);
    };
    const cached = await this.states.cached(namespace).catch(unavailable);
    await this.refuseForeign(request, cached);
    const current =
      !this.states.proposal(namespace) &&
      !cached.removal &&
      cached.desired?.generation === request.generation &&
      cached.applied?.generation === request.generation &&
      sameQuota(cached.desired.quota, quota);
    if (current && !cached.lastError) {
      // Nothing to write to the cluster, but the flake now runs this commit: the builder
      // reads it (GetStatus) to deploy only commits that descend from it, and an older
      // commit between the two must not pass for new.
      if (cached.applied?.revision !== request.revision)
        await this.recordRevision(namespace, request).catch(unavailable);
      this.metrics.generations.inc({ result: 'unchanged' });
      return { changed: false, generation: request.generation };
    }
    const desired = desiredOf(request, quota);
    try {
      if (this.controller.isLeading && cached.desired) {
        // A flake with a stored state: the reconcile records this generation with its
        // outcome, so the push writes the state once. Should this replica die first, the
        // call fails, the builder retries it, and the next leader meanwhile keeps the
        // flake on the generation stored before.
        this.states.propose(namespace, desired);
        await this.controller.enqueueAndWait(namespace);
      } else {
        await this.storeDesired(request, desired);
        if (this.controller.isLeading) await this.controller.enqueueAndWait(namespace);
        else await this.leaderOutcome(namespace, request.generation);
      }
    } catch (error) {
      if (error instanceof GenerationError && error.kind === 'foreign') throw error;
      // A spec the API server refuses (or a missing permission) will not heal by retrying.
      const terminal = error instanceof TerminalError || error instanceof KubeRejected;
      this.metrics.generations.inc({ result: terminal ? 'rejected' : 'failed' });
      this.logger.warn(
        { err: error, namespace, generation: request.generation },
        'generation not applied',
      );
      throw new GenerationError(terminal ? 'failed' : 'unavailable', (error as Error).message);
    }
    this.metrics.generations.inc({ result: 'applied' });
    return { changed: true, generation: request.generation };
  }

  /**
   * Refuses a flake whose namespace already holds another flake (the namespace name keeps
   * only about 30 bits of the URI's hash): nothing is written but a Warning Event for the
   * namespace's owner to see.
   */
  private async refuseForeign(
    request: ApplyGenerationRequest__Output,
    state: FlakeState,
  ): Promise<void> {
    const live = await this.states.namespace(request.namespace).catch((error: Error) => {
      throw new GenerationError('unavailable', error.message);
    });
    const owner = foreignOwner(request.flakeUri, live, state);
    if (!owner) return;
    this.metrics.namespaceConflicts.inc();
    this.logger.warn(
      { namespace: request.namespace, flake: redactFlakeRef(request.flakeUri) },
      'generation refused: the namespace belongs to another flake',
    );
    if (state.desired)
      this.events.record(
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          namespace: request.namespace,
          name: STATE_CONFIG_MAP,
        },
        'Warning',
        'ForeignFlakeRefused',
        `a generation of ${redactFlakeRef(request.flakeUri)}, another flake whose namespace name is the same, was refused`,
      );
    throw new GenerationError(
      'foreign',
      `namespace ${request.namespace} belongs to another flake; ${redactFlakeRef(request.flakeUri)} maps to the same name and cannot use it`,
    );
  }

  /**
   * Records the request as the flake's desired generation before it is applied: for a new
   * flake (a reconciler killed mid-apply must not leave objects no state accounts for) and
   * on a replica that does not lead (the leader takes it from there). The Namespace first
   * when it does not exist (the state lives in it; the reconcile keeps it as the
   * generation says), then `seed-state`, written over the version just read so a
   * concurrent write of another replica or of the reconcile is not lost.
   */
  private async storeDesired(
    request: ApplyGenerationRequest__Output,
    desired: DesiredGeneration,
  ): Promise<void> {
    const namespace = request.namespace;
    for (let attempt = 1; ; attempt++) {
      const state = await this.states.load(namespace);
      await this.refuseForeign(request, state);
      if (!(await this.states.namespace(namespace)))
        await this.kube.apply(
          renderNamespace({
            flakeUri: request.flakeUri,
            namespace,
            commit: request.revision,
            generation: request.generation,
          }),
        );
      try {
        await this.states.save(namespace, {
          ...state,
          desired,
          // An error about another generation says nothing about this one.
          lastError: state.desired?.generation === request.generation ? state.lastError : '',
          // A new generation brings a removed flake back.
          removal: undefined,
        });
        return;
      } catch (error) {
        if (!(error instanceof KubeConflict) || attempt >= STATE_WRITE_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Records a new commit of the generation the flake already runs, in its desired and
   * applied state, unless a newer generation took its place meanwhile.
   */
  private async recordRevision(
    namespace: string,
    request: ApplyGenerationRequest__Output,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const state = await this.states.load(namespace);
      const { desired, applied } = state;
      if (desired?.generation !== request.generation || applied?.generation !== request.generation)
        return;
      try {
        await this.states.save(namespace, {
          ...state,
          desired: { ...desired, revision: request.revision },
          applied: { ...applied, revision: request.revision },
        });
        return;
      } catch (error) {
        if (!(error instanceof KubeConflict) || attempt >= STATE_WRITE_ATTEMPTS) throw error;
      }
    }
  }

  /** On a replica that does not lead: the outcome the leader records in `seed-state`. */
  private async leaderOutcome(namespace: string, generation: string): Promise<void> {
    const outcome = await this.states.waitFor(
      namespace,
      (state) => {
        if (state.desired?.generation !== generation) return undefined;
        if (state.lastError) return new TerminalError(state.lastError);
        return state.applied?.generation === generation ? 'applied' : undefined;
      },
      FOLLOWER_WAIT_MS,
    );
    if (outcome === undefined)
      throw new Error(
        `the leading reconciler did not apply generation ${generation} within ${FOLLOWER_WAIT_MS / 1000} s`,
      );
    if (outcome instanceof Error) throw outcome;
  }

  /**
   * Removes a flake (its SeedFlake was deleted): records the removal in its state, which
   * the reconcile then carries out and a new leader finishes; nothing to do for a flake
   * that never had a generation. Resolves once the removal is stored.
   */
  async remove(flakeUri: string, by: string): Promise<'removing' | 'never-applied'> {
    const namespace = deriveNamespace(flakeUri);
    for (let attempt = 1; ; attempt++) {
      const state = await this.states.load(namespace);
      if (!state.desired || state.desired.flakeUri !== flakeUri) return 'never-applied';
      if (state.removal) return 'removing';
      try {
        await this.states.save(namespace, {
          ...state,
          removal: { requestedAt: new Date().toISOString(), by },
        });
        this.events.record(
          { apiVersion: 'v1', kind: 'ConfigMap', namespace, name: STATE_CONFIG_MAP },
          'Normal',
          'FlakeRemoved',
          `${flakeUri} removed (${by}): its instances are deleted, its volume claims kept`,
        );
        this.controller.enqueue(namespace);
        return 'removing';
      } catch (error) {
        if (!(error instanceof KubeConflict) || attempt >= STATE_WRITE_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Applies one of the flake's kept generations again, without a build: `to` names it by
   * generation hash or commit prefix; empty, the one applied before the current one. It
   * goes the way a builder's generation goes (`apply`), so it answers once applied.
   */
  async rollback(flakeUri: string, to: string): Promise<{ changed: boolean; generation: string }> {
    const namespace = deriveNamespace(flakeUri);
    const state = await this.states.load(namespace).catch((error: Error) => {
      throw new GenerationError('unavailable', error.message);
    });
    if (!state.desired || state.desired.flakeUri !== flakeUri || state.removal)
      throw new GenerationError('not-found', `${flakeUri} has no generation applied`);
    const kept = state.kept ?? [];
    const target = to
      ? kept.find(
          (entry) => entry.generation === to || (to.length >= 7 && entry.revision.startsWith(to)),
        )
      : kept.find((entry) => entry.generation !== state.applied?.generation);
    if (!target) {
      const listed = kept.map((e) => `${e.generation} (${e.revision.slice(0, 12)})`).join(', ');
      throw new GenerationError(
        'not-found',
        `${to ? `no kept generation of ${flakeUri} is ${to}` : `${flakeUri} has no earlier generation kept`}; kept: ${listed || 'none'}`,
      );
    }
    this.logger.info({ flake: flakeUri, generation: target.generation }, 'rolling back');
    return this.apply({
      flakeUri,
      namespace,
      revision: target.revision,
      generation: target.generation,
      instances: target.instances,
      quota: target.quota ?? null,
    });
  }

  async status(flakeUri: string): Promise<FlakeStatus> {
    try {
      parseFlakeRef(flakeUri);
    } catch (error) {
      throw new GenerationError('invalid', (error as Error).message);
    }
    // Read fresh: a caller asking right after its ApplyGeneration must see that
    // generation, which the watch's cache may not have yet.
    const namespace = deriveNamespace(flakeUri);
    const status = await this.statusOf(namespace, () => this.states.load(namespace));
    if (!status)
      throw new GenerationError('not-found', `no generation was ever applied for ${flakeUri}`);
    return status;
  }

  /** Every flake with a recorded generation, in namespace order. */
  async list(): Promise<FlakeStatus[]> {
    const namespaces = await this.states.namespaces().catch((error: Error) => {
      throw new GenerationError('unavailable', error.message);
    });
    const statuses = await mapLimited(namespaces, READS_AT_ONCE, (namespace) =>
      this.statusOf(namespace, () => this.states.cached(namespace)),
    );
    return statuses.filter((status) => status !== undefined);
  }

  /** What the instance's TPM request says, when it holds the instance back. */
  private async tpmRolloutOf(
    namespace: string,
    name: string,
    deploymentExists: boolean,
  ): Promise<InstanceRollout | undefined> {
    let request: (TpmRequestView & KubernetesObject) | undefined;
    try {
      request = await this.kube.read<TpmRequestView & KubernetesObject>(
        'v1',
        'ConfigMap',
        namespace,
        tpmRequestName(name),
      );
    } catch (error) {
      return {
        rollout: 'unknown',
        reason: 'TpmUnreadable',
        message: `cannot read the TPM request: ${(error as Error).message}`,
        readyReplicas: 0,
      };
    }
    return tpmRollout(request, deploymentExists, namespace, name);
  }

  private async statusOf(
    namespace: string,
    readState: () => Promise<FlakeState>,
  ): Promise<FlakeStatus | undefined> {
    const state = await readState().catch((error: Error) => {
      throw new GenerationError('unavailable', error.message);
    });
    if (!state.desired) return undefined;
    if (state.removal) {
      const claims = await this.kube
        .list<KubernetesObject>('v1', 'PersistentVolumeClaim', namespace, OWNED_SELECTOR)
        .catch((error: Error) => {
          throw new GenerationError('unavailable', error.message);
        });
      return {
        flakeUri: state.desired.flakeUri,
        namespace,
        generation: '',
        revision: '',
        instances: [],
        lastError: '',
        appliedAt: '',
        removedAt: state.removal.requestedAt,
        keptClaims: claims.map((claim) => claim.metadata?.name ?? '').sort(),
      };
    }
    // One list of the flake's pods and one of its ReplicaSets; pods that cannot be read
    // leave the Deployments to answer alone.
    const workloads = Promise.all([
      this.kube.list<PodView & KubernetesObject>('v1', 'Pod', namespace, OWNED_SELECTOR),
      this.kube.list<ReplicaSetView & KubernetesObject>(
        'apps/v1',
        'ReplicaSet',
        namespace,
        OWNED_SELECTOR,
      ),
    ]).catch((error: Error) => {
      this.logger.warn({ err: error, namespace }, 'pods not read for status');
      return undefined;
    });
    // An instance whose Deployment cannot be read says so; the others still report.
    const instances: InstanceStatus[] = await mapLimited(
      state.desired.instances,
      READS_AT_ONCE,
      async ({ name, metaJson }) => {
        let deployment: DeploymentView | undefined;
        try {
          deployment = await this.kube.read<DeploymentView & KubernetesObject>(
            'apps/v1',
            'Deployment',
            namespace,
            instanceObjectName(name),
          );
        } catch (error) {
          return {
            name,
            rollout: 'unknown',
            reason: 'DeploymentUnreadable',
            readyReplicas: 0,
            message: `cannot read the Deployment: ${(error as Error).message}`,
          };
        }
        if (wantsTpm(metaJson)) {
          const held = await this.tpmRolloutOf(namespace, name, deployment !== undefined);
          if (held) return { name, ...held };
        }
        const [pods, replicaSets] = (await workloads) ?? [];
        return { name, ...instanceRollout(deployment, pods, replicaSets) };
      },
    );
    return {
      flakeUri: state.desired.flakeUri,
      namespace,
      generation: state.applied?.generation ?? '',
      revision: state.applied?.revision ?? '',
      instances,
      lastError: state.lastError,
      appliedAt: state.applied?.appliedAt ?? '',
      keptGenerations: (state.kept ?? []).map(({ generation, revision, appliedAt }) => ({
        generation,
        revision,
        appliedAt,
      })),
    };
  }
}

/**
 * Checks a request before anything is written, and returns its quota (undefined: the
 * builder sent none, and the defaults apply). A generation beyond the flake's caps is
 * refused here, naming each cap, rather than pod by pod by the API server.
 */
function validate(request: ApplyGenerationRequest__Output): FlakeQuota | undefined {
  const problems: string[] = [];
  const metas: SeedMeta[] = [];
  try {
    parseFlakeRef(request.flakeUri);
    if (request.namespace !== deriveNamespace(request.flakeUri)) {
      problems.push(
        `namespace ${request.namespace} is not the flake's (${deriveNamespace(request.flakeUri)})`,
      );
    }
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (!/^[0-9a-f]{12}$/.test(request.generation)) problems.push('generation must be 12 hex digits');
  if (!/^[0-9a-f]{40}$/.test(request.revision))
    problems.push('revision must be a 40-digit commit id');
  const names = new Set<string>();
  for (const instance of request.instances) {
    if (names.has(instance.name)) problems.push(`instance ${instance.name} is listed twice`);
    names.add(instance.name);
    if (!instance.image.startsWith('/'))
      problems.push(`instance ${instance.name}: image must be a store path`);
    let meta: unknown;
    try {
      meta = JSON.parse(instance.metaJson);
    } catch {
      problems.push(`instance ${instance.name}: meta is not valid JSON`);
      continue;
    }
    const parsed = parseSeedMeta(meta, instance.name);
    if (parsed.ok) metas.push(parsed.meta);
    else
      problems.push(
        ...parsed.problems.map((p) => `instance ${instance.name}: meta.${p.path}: ${p.message}`),
      );
  }
  const quota = request.quota === null ? undefined : flakeQuotaSchema.safeParse(request.quota);
  if (quota && !quota.success)
    problems.push(...quota.error.issues.map((i) => `quota.${i.path.join('.')}: ${i.message}`));
  if (problems.length > 0) throw new GenerationError('invalid', problems.join('; '));
  const excess = quotaExcess(quota?.data ?? DEFAULT_FLAKE_QUOTA, metas);
  if (excess.length > 0)
    throw new GenerationError('failed', `exceeds the flake's caps: ${excess.join('; ')}`);
  return quota?.data;
}

/** The request as the flake's desired generation: what `seed-state` keeps of it. */
function desiredOf(
  request: ApplyGenerationRequest__Output,
  quota: FlakeQuota | undefined,
): DesiredGeneration {
  return {
    flakeUri: request.flakeUri,
    namespace: request.namespace,
    revision: request.revision,
    generation: request.generation,
    instances: request.instances.map(({ name, metaJson, image }) => ({ name, metaJson, image })),
    ...(quota && { quota }),
  };
}

/** Whether two flakes' caps are the same, an absent one being the defaults. */
function sameQuota(a: FlakeQuota | undefined, b: FlakeQuota | undefined): boolean {
  return canonicalJson(a ?? DEFAULT_FLAKE_QUOTA) === canonicalJson(b ?? DEFAULT_FLAKE_QUOTA);
}

/** Whether an instance's meta asks for a TPM (a meta that does not parse asks for none). */
function wantsTpm(metaJson: string): boolean {
  try {
    return (JSON.parse(metaJson) as { tpm?: unknown }).tpm === true;
  } catch {
    return false;
  }
}
