import { QueueLimitReached } from '@seed/builds-queue';
import {
  REBUILD_ANNOTATION,
  flakeKey,
  rebuildRequestSchema,
  type RebuildAnswer,
  type RebuildRequest,
  type SeedFlakeResource,
} from '@seed/contracts';
import type { Logger } from '@seed/service-kit';
import { branchBuild, type BranchHead, type FlakeBranch } from './branch-head';
import { flakeBranch, type RefusedSeedFlake, type RegisteredFlake } from './flake-registry';
import type { WebhookMetrics } from './metrics';
import type { BuildsQueue } from './webhook.service';

/** A rebuild request on a SeedFlake not answered yet, with what the webhook knows of it. */
export interface AskedRebuild {
  resource: string;
  request: RebuildRequest;
  /** The flake the SeedFlake registers, when the webhook serves it. */
  flake?: RegisteredFlake;
  /** Why the webhook does not serve the SeedFlake. */
  refused?: string;
}

/**
 * The SeedFlakes carrying a rebuild request their status has not answered. A request that
 * cannot be read is named in `unreadable` (it has no id to answer under).
 */
export function askedRebuilds(
  resources: readonly SeedFlakeResource[],
  served: (resource: string) => RegisteredFlake | undefined,
  refused: readonly RefusedSeedFlake[],
): { asked: AskedRebuild[]; unreadable: { resource: string; reason: string }[] } {
  const asked: AskedRebuild[] = [];
  const unreadable: { resource: string; reason: string }[] = [];
  for (const resource of resources) {
    const annotation = resource.metadata.annotations?.[REBUILD_ANNOTATION];
    if (annotation === undefined || resource.metadata.deletionTimestamp) continue;
    const name = resource.metadata.name;
    let request: RebuildRequest;
    try {
      request = rebuildRequestSchema.parse(JSON.parse(annotation));
    } catch (error) {
      unreadable.push({ resource: name, reason: (error as Error).message });
      continue;
    }
    if (resource.status?.lastHandledRebuild?.id === request.id) continue;
    const flake = served(name);
    asked.push({
      resource: name,
      request,
      ...(flake
        ? { flake }
        : { refused: refused.find((r) => r.resource === name)?.reason ?? 'not served' }),
    });
  }
  return { asked, unreadable };
}

export type RebuildOutcome = 'queued' | 'refused' | 'unavailable';

/**
 * Answers operators' rebuild requests (`seed rebuild`): reads the flake's branch, queues
 * the commit asked for (or the head) under the request's own job id, so a commit built
 * before builds again, and writes the answer to the SeedFlake's status. A request the
 * queue could not take (Redis away) or whose answer was not written stays unanswered and
 * is taken again at the next look at the SeedFlakes; its delivery id keeps it one build.
 */
export class RebuildRequests {
  private readonly running = new Map<string, Promise<void>>();
  private readonly answered = new Map<string, string>();

  constructor(
    private readonly builds: BuildsQueue,
    private readonly readHead: (branch: FlakeBranch) => Promise<BranchHead>,
    private readonly answer: (resource: string, answer: RebuildAnswer) => Promise<void>,
    private readonly metrics: WebhookMetrics,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Starts on each asked rebuild not already being handled or answered. */
  take(asked: readonly AskedRebuild[]): void {
    for (const rebuild of asked) {
      const key = `${rebuild.resource}/${rebuild.request.id}`;
      if (this.running.has(key) || this.answered.get(rebuild.resource) === rebuild.request.id)
        continue;
      const handling = this.handle(rebuild).finally(() => this.running.delete(key));
      this.running.set(key, handling);
    }
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.running.values());
  }

  private async handle(rebuild: AskedRebuild): Promise<void> {
    const log = this.logger.child({ seedFlake: rebuild.resource, rebuild: rebuild.request.id });
    let outcome: { answer: Omit<RebuildAnswer, 'id' | 'handledAt'> } | 'unavailable';
    try {
      outcome = await this.queue(rebuild);
    } catch (error) {
      log.warn({ err: error }, 'rebuild not queued; taken again at the next look');
      outcome = 'unavailable';
    }
    if (outcome === 'unavailable') {
      this.metrics.rebuilds.inc({ outcome });
      return;
    }
    const answer: RebuildAnswer = {
      id: rebuild.request.id,
      handledAt: this.now()
        .toISOString()
        .replace(/\.\d+Z$/, 'Z'),
      ...outcome.answer,
    };
    try {
      await this.answer(rebuild.resource, answer);
    } catch (error) {
      log.warn({ err: error }, 'rebuild answer not written; written again at the next look');
      return;
    }
    this.answered.set(rebuild.resource, rebuild.request.id);
    this.metrics.rebuilds.inc({ outcome: answer.error === undefined ? 'queued' : 'refused' });
    if (answer.error === undefined)
      log.info(
        { commit: answer.commit, jobId: answer.jobId, by: rebuild.request.by },
        'rebuild queued',
      );
    else log.info({ reason: answer.error, by: rebuild.request.by }, 'rebuild refused');
  }

  private async queue(
    rebuild: AskedRebuild,
  ): Promise<{ answer: Omit<RebuildAnswer, 'id' | 'handledAt'> }> {
    const refuse = (error: string) => ({ answer: { error } });
    const { flake, request } = rebuild;
    if (!flake) return refuse(`the webhook does not serve this SeedFlake: ${rebuild.refused}`);
    if (flake.suspended)
      return refuse(
        `the SeedFlake is suspended (seed resume ${rebuild.resource} lifts it): a rebuild would undo what suspended it`,
      );
    const branch = flakeBranch(flake);
    if ('unreadable' in branch) return refuse(branch.unreadable);
    let head: BranchHead;
    try {
      head = await this.readHead(branch);
    } catch (error) {
      return refuse(`its branch head cannot be read: ${(error as Error).message}`);
    }
    const commit = request.commit ?? head.commit;
    // One delivery id per request: a request taken twice (a restart before its answer was
    // written) answers the job it queued the first time.
    const deliveryId = `rebuild-${flakeKey(flake.flake)}-${request.id}`;
    const job = branchBuild(branch, { ref: head.ref, commit }, deliveryId, this.now(), {
      rebuild: request.id,
      // A commit named by the operator deploys even when it is older than the applied one.
      ...(request.commit !== undefined && { allowBackward: true }),
    });
    try {
      const record = await this.builds.queue(branch.forge, deliveryId, [job]);
      const jobId = record.duplicate ? record.jobIds[0] : record.builds[0]!.jobId;
      return { answer: { commit, ...(jobId !== undefined && { jobId }) } };
    } catch (error) {
      if (error instanceof QueueLimitReached) return refuse(error.message);
      throw error;
    }
  }
}
