import { isDeepStrictEqual } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import {
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
    ...(previous?.lastFetchedRevision && { lastFetchedRevision: previous.lastFetchedRevision }),
    lastAppliedRevision: flake?.revision ?? '',
    generation: flake?.generation ?? '',
    lastError: facts.taken ? verdict.Stalled.message : (flake?.lastError ?? ''),
    instances,
    conditions,
  };
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

/**
 * Keeps every SeedFlake's status true to the cluster: on each change to the SeedFlakes
 * and every `intervalMs` (rollouts move without touching them), while this replica
 * leads. A status is written only when it changed, so a quiet cluster costs reads only.
 */
export class SeedFlakeStatusWriter {
  private watch: SeedFlakeWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private leading = false;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly config: KubeConfig,
    private readonly flakes: SeedFlakeClient,
    private readonly flakeStatus: (flakeUri: string) => Promise<FlakeStatus | undefined>,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  start(): void {
    this.watch = watchSeedFlakes(
      this.config,
      () => this.refresh(),
      (error) => this.logger.debug({ err: error }, 'SeedFlake watch failed; retrying'),
    );
    this.timer = setInterval(() => this.refresh(), this.intervalMs);
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

  /** Writes every status now, or once more after the pass under way. */
  refresh(): void {
    if (!this.leading || !this.watch?.synced()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.writeAll()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'SeedFlake statuses not written'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      });
  }

  private async writeAll(): Promise<void> {
    const resources = this.watch!.list().filter((resource) => !resource.metadata.deletionTimestamp);
    const taken = namespaceHolders(resources, deriveNamespace);
    for (const resource of resources) {
      const name = resource.metadata.name;
      try {
        const facts = {
          resource,
          namespace: deriveNamespace(resource.spec.flake),
          taken: taken.get(name),
          flake: taken.get(name) ? undefined : await this.flakeStatus(resource.spec.flake),
        };
        const next = seedFlakeStatus(facts, resource.status, this.now());
        if (isDeepStrictEqual(resource.status, next)) continue;
        await this.flakes.patchStatus(name, next);
      } catch (error) {
        this.logger.warn({ err: error, seedFlake: name }, 'SeedFlake status not written');
      }
    }
  }
}
