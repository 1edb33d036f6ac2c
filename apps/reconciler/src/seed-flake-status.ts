import { isDeepStrictEqual } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  DELETED_BY_ANNOTATION,
  WEBHOOK_STATUS_FIELDS,
  deriveNamespace,
  namespaceHolders,
  type FlakeStatus,
  type NamespaceTaken,
  type SeedFlakeCondition,
  type SeedFlakeConditionType,
  type SeedFlakeInstanceStatus,
  type SeedFlakeResource,
  type SeedFlakeStatus,
} from '@seed/contracts';
import { SeedFlakeClient, watchSeedFlakes, type SeedFlakeWatch } from '@seed/seed-flakes';
import type { Logger } from '@seed/service-kit';

/** What the reconciler knows of one SeedFlake's flake. */
export interface SeedFlakeFacts {
  resource: SeedFlakeResource;
  namespace: string;
  /** Another SeedFlake holds the namespace: this one is never served. */
  taken?: NamespaceTaken;
  /** The flake's applied generation and rollout; undefined before its first generation. */
  flake?: FlakeStatus;
}

type Verdict = Record<SeedFlakeConditionType, { status: boolean; reason: string; message: string }>;

/**
 * A SeedFlake's status, kstatus-style: Ready when the applied generation runs on every
 * instance; Reconciling while it rolls out or waits for its first generation; Stalled
 * when it cannot get there without someone acting (its namespace is taken, its last
 * generation failed, an instance failed). Conditions keep their transition time while
 * their status stays.
 */
export function seedFlakeStatus(
  facts: SeedFlakeFacts,
  previous: SeedFlakeStatus | undefined,
  now: Date,
): SeedFlakeStatus {
  const { resource, flake } = facts;
  const instances = (flake?.instances ?? []).map((instance): SeedFlakeInstanceStatus => ({
    name: instance.name ?? '',
    state:
      instance.rollout === 'available'
        ? 'Available'
        : instance.rollout === 'failed'
          ? 'Failed'
          : 'Progressing',
    readyReplicas: instance.readyReplicas,
    ...(instance.message && { message: instance.message }),
  }));
  const verdict = judge(facts, instances);
  const generation = resource.metadata.generation;
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const conditions = (['Ready', 'Reconciling', 'Stalled'] as const).map(
    (type): SeedFlakeCondition => {
      const { status, reason, message } = verdict[type];
      const word = status ? 'True' : 'False';
      const before = previous?.conditions?.find((condition) => condition.type === type);
      return {
        type,
        status: word,
        reason,
        message,
        lastTransitionTime: before?.status === word ? before.lastTransitionTime : stamp,
        ...(generation !== undefined && { observedGeneration: generation }),
      };
    },
  );
  return {
    ...(generation !== undefined && { observedGeneration: generation }),
    namespace: facts.namespace,
    ...webhookFields(previous),
    lastAppliedRevision: flake?.revision ?? '',
    generation: flake?.generation ?? '',
    lastError: facts.taken ? verdict.Stalled.message : (flake?.lastError ?? ''),
    instances,
    conditions,
  };
}

/** The webhook's fields of a status, which a merge patch of the reconciler's leaves alone. */
function webhookFields(status: SeedFlakeStatus | undefined): Partial<SeedFlakeStatus> {
  return Object.fromEntries(
    WEBHOOK_STATUS_FIELDS.filter((field) => status?.[field] !== undefined).map((field) => [
      field,
      status![field],
    ]),
  );
}

function judge(facts: SeedFlakeFacts, instances: SeedFlakeInstanceStatus[]): Verdict {
  const suspended = facts.resource.spec.suspend === true;
  const not = (reason: string, message: string) => ({ status: false, reason, message });
  const is = (reason: string, message: string) => ({ status: true, reason, message });
  const stalled = (reason: string, message: string): Verdict => ({
    Ready: not(reason, message),
    Reconciling: not(reason, message),
    Stalled: is(reason, message),
  });
  if (facts.taken) {
    return stalled(
      'NamespaceTaken',
      `its flake's namespace ${facts.taken.namespace} belongs to SeedFlake ${facts.taken.holder}: delete one of them`,
    );
  }
  const { flake } = facts;
  if (!flake?.generation) {
    const message = suspended
      ? 'suspended before its first generation: seed resume lifts it'
      : 'no generation applied yet: waiting for a push or a poll to build one';
    return {
      Ready: not(suspended ? 'Suspended' : 'AwaitingGeneration', message),
      Reconciling: suspended ? not('Suspended', message) : is('AwaitingGeneration', message),
      Stalled: not('AwaitingGeneration', message),
    };
  }
  if (flake.lastError) return stalled('GenerationFailed', flake.lastError);
  const failed = instances.filter((instance) => instance.state === 'Failed');
  if (failed.length > 0) {
    return stalled(
      'InstanceFailed',
      failed.map((instance) => `${instance.name}: ${instance.message ?? 'failed'}`).join('; '),
    );
  }
  const progressing = instances.filter((instance) => instance.state === 'Progressing');
  const runs = `generation ${flake.generation} from ${(flake.revision ?? '').slice(0, 12)}`;
  if (progressing.length > 0) {
    const message = `${runs} rolling out: ${progressing.map((instance) => instance.name).join(', ')}`;
    return {
      Ready: not('Progressing', message),
      Reconciling: is('Progressing', message),
      Stalled: not('Progressing', message),
    };
  }
  const message = suspended
    ? `${runs} runs; suspended: pushes deploy nothing until seed resume`
    : `${runs} runs on every instance`;
  const reason = suspended ? 'Suspended' : 'Applied';
  return {
    Ready: is(reason, message),
    Reconciling: not(reason, message),
    Stalled: not(reason, message),
  };
}

/** The finalizer by which a deleted SeedFlake's flake is removed before it goes. */
export const REMOVAL_FINALIZER = 'seed.loom.farm/flake-removal';

/** What the SeedFlake controller asks of the rest of the reconciler. */
export interface SeedFlakePorts {
  /** The flake's status as GetStatus reads it; undefined before its first generation. */
  flakeStatus(flakeUri: string): Promise<FlakeStatus | undefined>;
  /** Records the flake's removal, which the reconcile carries out (GenerationsService.remove). */
  removeFlake(flakeUri: string, by: string): Promise<unknown>;
}

/**
 * The SeedFlakes' side of the reconciler, while this replica leads: each SeedFlake's
 * status kept true to the cluster (on each change to the SeedFlakes and every
 * `intervalMs`, as rollouts move without touching them; written only when it changed),
 * and a finalizer on each, so a deleted SeedFlake's flake is removed (after
 * `removalGraceMs`) before the SeedFlake goes, across restarts.
 */
export class SeedFlakeController {
  private watch: SeedFlakeWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private leading = false;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly config: KubeConfig,
    private readonly flakes: SeedFlakeClient,
    private readonly ports: SeedFlakePorts,
    private readonly options: { intervalMs: number; removalGraceMs: number },
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  start(): void {
    this.watch = watchSeedFlakes(
      this.config,
      () => this.refresh(),
      (error) => this.logger.debug({ err: error }, 'SeedFlake watch failed; retrying'),
    );
    this.timer = setInterval(() => this.refresh(), this.options.intervalMs);
    this.timer.unref();
  }

  startLeading(): void {
    this.leading = true;
    this.refresh();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.watch?.stop();
    await this.running;
  }

  /** Goes over every SeedFlake now, or once more after the pass under way. */
  refresh(): void {
    if (!this.leading || !this.watch?.synced()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.syncAll()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'SeedFlakes not synced'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      });
  }

  private async syncAll(): Promise<void> {
    const all = this.watch!.list();
    const live = all.filter((resource) => !resource.metadata.deletionTimestamp);
    const taken = namespaceHolders(live, deriveNamespace);
    // Which SeedFlake holds each namespace, counting those being deleted: only a holder's
    // deletion removes the flake in it.
    const heldBefore = namespaceHolders(all, deriveNamespace);
    for (const resource of all) {
      const name = resource.metadata.name;
      try {
        if (resource.metadata.deletionTimestamp) {
          await this.finishRemoval(resource, heldBefore.get(name) === undefined);
          continue;
        }
        const finalizers = resource.metadata.finalizers ?? [];
        if (!finalizers.includes(REMOVAL_FINALIZER))
          await this.flakes.patch(name, {
            metadata: { finalizers: [...finalizers, REMOVAL_FINALIZER] },
          });
        const facts = {
          resource,
          namespace: deriveNamespace(resource.spec.flake),
          taken: taken.get(name),
          flake: taken.get(name) ? undefined : await this.ports.flakeStatus(resource.spec.flake),
        };
        const next = seedFlakeStatus(facts, resource.status, this.now());
        if (isDeepStrictEqual(resource.status, next)) continue;
        await this.flakes.patchStatus(name, next);
      } catch (error) {
        this.logger.warn({ err: error, seedFlake: name }, 'SeedFlake not synced');
      }
    }
  }

  /**
   * A deleted SeedFlake: its flake runs on for the grace period (a deletion by mistake
   * is undone by re-creating nothing: apply the SeedFlake again once it is gone, and
   * push), then its removal is recorded and the finalizer let go.
   */
  private async finishRemoval(resource: SeedFlakeResource, holdsNamespace: boolean): Promise<void> {
    const { name, finalizers = [], deletionTimestamp, annotations } = resource.metadata;
    if (!finalizers.includes(REMOVAL_FINALIZER)) return;
    const due = Date.parse(deletionTimestamp!) + this.options.removalGraceMs;
    if (holdsNamespace && this.now().getTime() < due) {
      const message = `deleted: its instances are removed at ${new Date(due).toISOString()}, its volume claims kept`;
      const removing = resource.status?.conditions?.find((c) => c.type === 'Reconciling');
      if (removing?.reason !== 'Removing')
        await this.flakes.patchStatus(name, {
          conditions: [
            ...(resource.status?.conditions ?? []).filter((c) => c.type !== 'Reconciling'),
            {
              type: 'Reconciling',
              status: 'True',
              reason: 'Removing',
              message,
              lastTransitionTime: this.now()
                .toISOString()
                .replace(/\.\d+Z$/, 'Z'),
            },
          ],
        });
      return;
    }
    if (holdsNamespace) {
      const by = annotations?.[DELETED_BY_ANNOTATION] ?? `SeedFlake ${name} deleted`;
      await this.ports.removeFlake(resource.spec.flake, by);
      this.logger.info({ seedFlake: name, flake: resource.spec.flake, by }, 'flake removed');
    }
    await this.flakes.patch(name, {
      metadata: { finalizers: finalizers.filter((finalizer) => finalizer !== REMOVAL_FINALIZER) },
    });
  }
}
