import { canonicalJson, parseSeedMeta } from '@seed/contracts';
import {
  ANNOTATION_COMMIT,
  ANNOTATION_GENERATION,
  ANNOTATION_INSTANCE_HASH,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  MANAGED_BY_SEED,
  ModelError,
  instanceObjectName,
  pinToTpm,
  renderGeneration,
  type ClusterNetwork,
  type SeedInstance,
  type SeedObject,
} from '@seed/k8s-model';
import type { Logger } from '@seed/service-kit';
import type { Reconciler } from './controller/controller';
import { TerminalError, type ProcessResult } from './controller/work-queue';
import type { EventRecorder } from './event-recorder';
import { FailedInstances } from './failed-instances';
import {
  STATE_CONFIG_MAP,
  foreignOwner,
  keepApplied,
  type DesiredGeneration,
  type FlakeRemoval,
  type FlakeState,
} from './flake-state';
import {
  instanceRollout,
  type DeploymentView,
  type InstanceRollout,
  type PodView,
  type Rollout,
  type ReplicaSetView,
} from './instance-rollout';
import { tpmPlacement, type TpmRequestView } from './instance-tpm';
import type { ReconcilerMetrics } from './metrics';
import { largerQuantity } from './quantity';
import type { FlakeStateRepository } from './repositories/flake-state.repository';
import {
  FIELD_MANAGER,
  KubeRejected,
  type KubeRepository,
  type KubernetesObject,
} from './repositories/kube.repository';
import { isSubset } from './subset';

/** What the reconcile writes to the API server (KubeRepository). */
export type ObjectWrites = Pick<KubeRepository, 'apply' | 'mergePatch' | 'delete'>;

/** Each flake's `seed-state` and namespace (FlakeStateRepository). */
export type FlakeStates = Pick<
  FlakeStateRepository,
  'load' | 'remembered' | 'namespace' | 'save' | 'proposal' | 'settle'
>;

/** Where live objects are read from: the informers' caches when they have them. */
export interface LiveObjects {
  get(object: SeedObject): Promise<KubernetesObject | undefined>;
  /** Tells the reader of a write the reconcile made (`deleted`: a delete), as the API server answered it. */
  wrote(object: KubernetesObject, deleted?: boolean): void;
  /** Seed's Deployments, Services and NetworkPolicies in a namespace, for pruning. */
  owned(namespace: string): Promise<KubernetesObject[]>;
  /** The claims in a namespace: what a removed flake leaves. */
  claims(namespace: string): KubernetesObject[];
  /** Seed's Deployments in a namespace with their ReplicaSets and pods, for rollouts. */
  workloads(namespace: string): Workloads;
}

export interface Workloads {
  deployments: DeploymentView[];
  replicaSets: ReplicaSetView[];
  pods: PodView[];
}

/**
 * The state a reconcile starts from, and whether it must be written whatever else the
 * reconcile writes: its desired generation is not (or no longer) in the cluster.
 */
interface Basis {
  state: FlakeState & { desired: DesiredGeneration };
  /** `seed-state` as the API server has it. */
  stored: FlakeState;
  unsaved: boolean;
  /** The proposal (FlakeStateRepository.propose) it applies, settled once recorded. */
  proposal?: DesiredGeneration;
}

/** What converging an object did, for its Event. */
type Written = { verb: 'Created' | 'Updated' | 'Restored'; uid?: string } | undefined;

export interface FlakeReconcilerOptions {
  /** Port of the node's shoot pool, for SEED_SHOOT_URL. */
  shootPoolPort: number;
  network: ClusterNetwork;
  /** Look at every flake again this often even without events. */
  resyncMs: number;
}

/** How often to look at a namespace being deleted, to re-create it once it is gone. */
const TERMINATING_RETRY_MS = 1000;
/** How often to look again at an instance whose Deployment waits for its TPM. */
const TPM_WAIT_RETRY_MS = 5000;

/**
 * Level-based reconcile of one flake, keyed by its namespace: read its desired generation
 * fresh, render it, apply only the objects that differ (server-side apply; the Namespace
 * first, created if it is missing), prune Deployments, Services and NetworkPolicies the
 * generation no longer has (never volumes), and record the outcome. An object the API
 * server rejects fails its instance, not the others. A `seed-state` deleted by hand (or
 * with its namespace) is written again from the last copy the watch saw.
 */
export class FlakeReconciler implements Reconciler {
  private readonly failed = new FailedInstances();

  constructor(
    private readonly kube: ObjectWrites,
    private readonly states: FlakeStates,
    private readonly live: LiveObjects,
    private readonly events: Pick<EventRecorder, 'record'>,
    private readonly metrics: ReconcilerMetrics,
    private readonly logger: Logger,
    private readonly options: FlakeReconcilerOptions,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async reconcile(namespace: string): Promise<ProcessResult> {
    const basis = await this.basis(namespace);
    if (!basis) return {};
    const { state, proposal } = basis;
    const desired = state.desired;
    const log = this.logger.child({
      namespace,
      flake: desired.flakeUri,
      generation: desired.generation,
    });
    const live = await this.states.namespace(namespace);
    // Nothing can be created in a namespace being deleted; once it is gone, its
    // deletion's event or this requeue re-creates it.
    if (live?.metadata?.deletionTimestamp) return { requeueAfterMs: TERMINATING_RETRY_MS };
    if (state.removal) return this.remove(namespace, live !== undefined, state.removal, log);
    const owner = foreignOwner(desired.flakeUri, live, basis.stored);
    if (owner) {
      if (proposal) this.states.settle(namespace, proposal);
      throw new TerminalError(`namespace ${namespace} belongs to ${owner}`);
    }

    let objects: SeedObject[];
    try {
      objects = renderGeneration(renderInput(desired), {
        shootPoolPort: this.options.shootPoolPort,
        network: this.options.network,
      });
    } catch (error) {
      if (error instanceof ModelError || error instanceof InvalidInstance) {
        await this.recordFailure(namespace, basis, error.message, log);
        throw new TerminalError(error.message);
      }
      throw error;
    }

    const failures = new Map<string, string>();
    // Instances whose TPM is not placed yet: their Deployment waits (instance-tpm.ts).
    const waitingForTpm = new Set<string>();
    const tpmRequests = new Map(
      objects
        .filter((object) => object.kind === 'ConfigMap')
        .map((object) => [object.metadata.labels?.[LABEL_INSTANCE] ?? '', object]),
    );
    for (const rendered of objects) {
      let object = rendered;
      const instance = object.metadata.labels?.[LABEL_INSTANCE] ?? '';
      if (failures.has(instance)) continue; // one rejected object fails its instance
      try {
        const request = tpmRequests.get(instance);
        if (object.kind === 'Deployment' && request) {
          const placement = tpmPlacement(
            (await this.live.get(request)) as TpmRequestView | undefined,
            namespace,
            instance,
          );
          if (!placement) {
            waitingForTpm.add(instance);
            continue;
          }
          object = pinToTpm(object, placement);
        }
        const written = await this.converge(object, object.kind === 'Namespace' ? live : null);
        // The Namespace, cluster-scoped, has no place for Events of its own to be found
        // by `kubectl describe`; `GenerationApplied` on seed-state tells about the flake.
        if (written && object.kind !== 'Namespace') this.tellWrite(object, written, desired);
      } catch (error) {
        if (!(error instanceof KubeRejected)) throw error;
        const why = `${object.kind} ${object.metadata.name}: ${error.message}`;
        if (!instance) {
          await this.recordFailure(namespace, basis, why, log);
          throw new TerminalError(why);
        }
        failures.set(instance, why);
      }
    }
    await this.prune(
      namespace,
      objects,
      (instance) => `generation ${desired.generation} has no instance ${instance}`,
    );
    this.reportRollouts(namespace, desired, log);

    if (failures.size > 0) {
      const message = [...failures.entries()]
        .map(([name, why]) => `instance ${name}: ${why}`)
        .join('; ');
      await this.recordFailure(namespace, basis, message, log);
      throw new TerminalError(message);
    }
    if (basis.unsaved || state.applied?.generation !== desired.generation || state.lastError) {
      const applied = {
        generation: desired.generation,
        revision: desired.revision,
        appliedAt: this.now().toISOString(),
      };
      const kept = keepApplied(state.kept ?? [], desired, applied.appliedAt);
      await this.states.save(namespace, { ...state, applied, kept, lastError: '' });
      log.info({ objects: objects.length }, 'generation applied');
      if (state.applied?.generation !== desired.generation)
        this.events.record(
          { apiVersion: 'v1', kind: 'ConfigMap', namespace, name: STATE_CONFIG_MAP },
          'Normal',
          'GenerationApplied',
          `generation ${desired.generation} (commit ${desired.revision.slice(0, 12)}) applied`,
        );
    }
    if (proposal) this.states.settle(namespace, proposal);
    if (waitingForTpm.size > 0) {
      // The request's watch queues the flake when an agent reports; this is the fallback.
      log.info({ instances: [...waitingForTpm] }, 'waiting for TPMs');
      return { requeueAfterMs: Math.min(this.options.resyncMs, TPM_WAIT_RETRY_MS) };
    }
    return { requeueAfterMs: this.options.resyncMs };
  }

  /**
   * The flake's desired generation: one this replica's ApplyGeneration proposed and has
   * not recorded yet, else the stored one, else (the state was deleted, by hand or with
   * its namespace) the last copy the watch saw. Undefined: not a flake, or one forgotten.
   */
  private async basis(namespace: string): Promise<Basis | undefined> {
    const stored = await this.states.load(namespace);
    const proposal = this.states.proposal(namespace);
    let state = stored;
    if (!stored.desired) {
      const remembered = this.states.remembered(namespace);
      if (remembered) state = { ...remembered, resourceVersion: undefined };
    }
    const desired = proposal ?? state.desired;
    if (!desired) return undefined;
    // A new generation brings a removed flake back.
    if (proposal) state = { ...state, removal: undefined };
    const unsaved =
      !stored.desired ||
      canonicalJson(stored.desired) !== canonicalJson(desired) ||
      (stored.removal !== undefined && state.removal === undefined);
    return { state: { ...state, desired }, stored, unsaved, proposal };
  }

  /**
   * Applies an object unless the live one already carries everything Seed sets; `known`
   * is the live object when the caller has read it already (null: read it here).
   */
  private async converge(
    object: SeedObject,
    known: KubernetesObject | undefined | null,
  ): Promise<Written> {
    const live = known === null ? await this.live.get(object) : known;
    const desired = object.kind === 'PersistentVolumeClaim' ? neverShrink(object, live) : object;
    if (live && isSubset(desired, live) && !ownsRetiredStamp(live)) return undefined;
    // The same stamp on both: nothing Seed changed, so someone else did (a hand edit).
    const verb = !live ? 'Created' : stampOf(live) === stampOf(desired) ? 'Restored' : 'Updated';
    try {
      this.metrics.writes.inc({ kind: object.kind, verb: 'apply' });
      const applied = await this.kube.apply(desired);
      this.live.wrote(applied);
      if (isSubset(desired, applied)) return { verb, uid: applied.metadata?.uid };
    } catch (error) {
      if (!(error instanceof KubeRejected) || !live) throw error;
    }
    // A hand edit left entries Seed does not own in a list Seed sets (a Service port
    // changed with kubectl edit, say): apply cannot remove them, a merge patch replaces
    // the lists whole; applying again makes Seed the owner of its fields once more.
    this.metrics.writes.inc({ kind: object.kind, verb: 'patch' });
    await this.kube.mergePatch(desired);
    const applied = await this.kube.apply(desired);
    this.live.wrote(applied);
    return { verb: verb === 'Created' ? 'Updated' : verb, uid: applied.metadata?.uid };
  }

  /**
   * A removed flake: its Deployments, Services, NetworkPolicies and TPM requests go, its
   * claims stay (Seed never deletes volumes), and the namespace goes with the last of
   * them: until then it is looked at again every resync.
   */
  private async remove(
    namespace: string,
    exists: boolean,
    removal: FlakeRemoval,
    log: Logger,
  ): Promise<ProcessResult> {
    if (!exists) return {};
    await this.prune(namespace, [], () => `the flake was removed (${removal.by})`);
    const claims = this.live.claims(namespace).map((claim) => claim.metadata?.name ?? '');
    if (claims.length > 0) {
      log.info({ claims }, 'flake removed; its claims are kept');
      return { requeueAfterMs: this.options.resyncMs };
    }
    await this.kube.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    this.metrics.writes.inc({ kind: 'Namespace', verb: 'delete' });
    log.info('flake removed with its namespace: it had no claims left');
    return {};
  }

  private async prune(
    namespace: string,
    objects: SeedObject[],
    why: (instance: string) => string,
  ): Promise<void> {
    const wanted = new Set(objects.map((object) => `${object.kind}/${object.metadata.name}`));
    for (const live of await this.live.owned(namespace)) {
      if (
        live.kind === 'PersistentVolumeClaim' ||
        wanted.has(`${live.kind}/${live.metadata?.name}`)
      )
        continue;
      await this.kube.delete(live);
      this.live.wrote(live, true);
      this.metrics.writes.inc({ kind: live.kind ?? 'unknown', verb: 'delete' });
      this.logger.info({ namespace, kind: live.kind, name: live.metadata?.name }, 'pruned');
      const instance = live.metadata?.labels?.[LABEL_INSTANCE] ?? live.metadata?.name ?? '';
      this.events.record(
        {
          apiVersion: live.apiVersion ?? 'v1',
          kind: live.kind ?? 'unknown',
          namespace,
          name: live.metadata?.name ?? '',
          uid: live.metadata?.uid,
        },
        'Normal',
        'Pruned',
        `${why(instance)}: deleted (its volumes are kept)`,
      );
    }
  }

  /**
   * Tells (a Warning Event `InstanceFailed` on its Deployment) about each instance that
   * turned failed since the flake was last reconciled, from the informers' caches: no
   * request unless there is something to tell.
   */
  private reportRollouts(namespace: string, desired: DesiredGeneration, log: Logger): void {
    const { deployments, replicaSets, pods } = this.live.workloads(namespace);
    const rollouts = new Map<string, InstanceRollout>();
    const byName = new Map(deployments.map((d) => [d.metadata?.name, d]));
    for (const { name } of desired.instances) {
      const deployment = byName.get(instanceObjectName(name));
      // A Deployment not in the cache yet was just created: nothing to tell about it.
      if (deployment) rollouts.set(name, instanceRollout(deployment, pods, replicaSets));
    }
    const counts: Record<Rollout, number> = { available: 0, progressing: 0, failed: 0, unknown: 0 };
    for (const { rollout } of rollouts.values()) counts[rollout] += 1;
    for (const [rollout, count] of Object.entries(counts)) {
      this.metrics.instances.set({ namespace, rollout }, count);
    }
    for (const { instance, rollout } of this.failed.turnedFailed(namespace, rollouts)) {
      const deployment = byName.get(instanceObjectName(instance));
      log.warn({ instance, reason: rollout.reason, error: rollout.message }, 'instance failed');
      this.events.record(
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          namespace,
          name: instanceObjectName(instance),
          uid: deployment?.metadata?.uid,
        },
        'Warning',
        'InstanceFailed',
        `${rollout.reason}: ${rollout.message}`,
        rollout.reason,
      );
    }
  }

  /** The Event of a write: `Created`, `Updated` or `Restored`. */
  private tellWrite(
    object: SeedObject,
    { verb, uid }: NonNullable<Written>,
    desired: DesiredGeneration,
  ): void {
    const what =
      verb === 'Restored'
        ? 'a change made outside Seed was undone'
        : verb === 'Created'
          ? 'created'
          : 'updated';
    this.events.record(
      {
        apiVersion: object.apiVersion,
        kind: object.kind,
        namespace: object.metadata.namespace ?? desired.namespace,
        name: object.metadata.name,
        uid,
      },
      'Normal',
      verb,
      `generation ${desired.generation}: ${what}`,
    );
  }

  /** Keeps the error in the flake's state and tells `kubectl describe` once per new error. */
  private async recordFailure(
    namespace: string,
    { state, unsaved, proposal }: Basis,
    message: string,
    log: Logger,
  ): Promise<void> {
    log.warn({ error: message }, 'generation not applied');
    if (state.lastError === message && !unsaved) return;
    await this.states.save(namespace, { ...state, lastError: message });
    if (proposal) this.states.settle(namespace, proposal);
    this.events.record(
      { apiVersion: 'v1', kind: 'ConfigMap', namespace, name: STATE_CONFIG_MAP },
      'Warning',
      'ApplyFailed',
      `generation ${state.desired?.generation}: ${message}`,
    );
  }
}

/** What says which version of Seed's an object is: its instance's hash. */
function stampOf(object: { metadata?: { annotations?: Record<string, string> } }) {
  return object.metadata?.annotations?.[ANNOTATION_INSTANCE_HASH];
}

/** Annotations an older Seed set on the Namespace and this one does not (docs/contracts.md). */
const RETIRED_NAMESPACE_ANNOTATIONS = [ANNOTATION_GENERATION, ANNOTATION_COMMIT].map(
  (annotation) => `f:${annotation}`,
);

/**
 * Whether Seed's field manager still owns an annotation it no longer sets: the Namespace
 * of a flake stamped with its generation and commit by an older Seed. Applying it once
 * more removes them, rather than leaving a generation that is never updated again; an
 * annotation someone else owns is theirs, and applying would not remove it.
 */
function ownsRetiredStamp(live: KubernetesObject): boolean {
  if (live.kind !== 'Namespace') return false;
  return (live.metadata?.managedFields ?? []).some((entry) => {
    const fields = entry.fieldsV1 as
      { 'f:metadata'?: { 'f:annotations'?: Record<string, unknown> } } | undefined;
    const annotations = fields?.['f:metadata']?.['f:annotations'] ?? {};
    return (
      entry.manager === FIELD_MANAGER &&
      RETIRED_NAMESPACE_ANNOTATIONS.some((annotation) => annotation in annotations)
    );
  });
}

/** A volume never shrinks: keep the live size when it is larger than the desired one. */
function neverShrink(claim: SeedObject, live: KubernetesObject | undefined): SeedObject {
  const current = (
    live as { spec?: { resources?: { requests?: { storage?: string } } } } | undefined
  )?.spec?.resources?.requests?.storage;
  const spec = (claim as unknown as { spec: { resources: { requests: { storage: string } } } })
    .spec;
  const size = largerQuantity(spec.resources.requests.storage, current);
  if (size === spec.resources.requests.storage) return claim;
  return {
    ...claim,
    spec: {
      ...spec,
      resources: { ...spec.resources, requests: { ...spec.resources.requests, storage: size } },
    },
  } as SeedObject;
}

/** An instance whose meta fails the shared schema: the whole generation is refused. */
export class InvalidInstance extends Error {
  override readonly name = 'InvalidInstance';
}

export function renderInput(desired: DesiredGeneration) {
  const instances: SeedInstance[] = desired.instances.map((instance) => {
    let meta: unknown;
    try {
      meta = JSON.parse(instance.metaJson);
    } catch {
      throw new InvalidInstance(`instance ${instance.name}: meta is not valid JSON`);
    }
    const parsed = parseSeedMeta(meta, instance.name);
    if (!parsed.ok) {
      const problems = parsed.problems.map((p) => `meta.${p.path}: ${p.message}`).join('; ');
      throw new InvalidInstance(`instance ${instance.name}: ${problems}`);
    }
    return { name: instance.name, meta: parsed.meta, image: instance.image };
  });
  return {
    flakeUri: desired.flakeUri,
    namespace: desired.namespace,
    commit: desired.revision,
    generation: desired.generation,
    instances,
    quota: desired.quota,
  };
}

export const OWNED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_SEED}`;
