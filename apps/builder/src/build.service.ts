import {
  FINAL_BUILD_STATES,
  deriveNamespace,
  generationHash,
  queuedBuildRecord,
  quotaExcess,
  type ApplyGenerationRequest,
  type ApplyGenerationResponse__Output,
  type BuildError,
  type BuildJob,
  type BuildRecord,
  type BuildState,
  type CommitStatusEvent,
} from '@seed/contracts';
import {
  NixError,
  pinFlakeRef,
  type BuildOptions,
  type BuiltSeed,
  type CallOptions,
  type EvaluatedSeed,
  type LockedFlake,
} from '@seed/nix-eval';
import type { Logger } from '@seed/service-kit';
import { appendLog } from './build-record';
import type { BuildRoots } from './generation-roots';
import type { BuilderMetrics } from './metrics';
import { PublishFailed } from './repositories/binary-cache.repository';
import { HistoryUnavailable, type Ancestry } from './repositories/git-history.repository';
import { GenerationRejected, ReconcilerUnavailable } from './repositories/reconciler.client';

/** The nix steps of a build (NixClient). */
export interface NixSteps {
  resolve(reference: string, call?: CallOptions): Promise<LockedFlake>;
  evaluateSeeds(reference: string, call?: CallOptions): Promise<EvaluatedSeed[]>;
  buildImages(seeds: readonly EvaluatedSeed[], call?: BuildOptions): Promise<BuiltSeed[]>;
}

/**
 * What keeps a build's paths through garbage collection (StoreKeeper): the store is used
 * from evaluation to publishing while no collection runs, and the images are rooted as
 * nix builds them, among the flake's last generations once the build seals them.
 */
export interface BuildKeeper {
  use<T>(step: () => Promise<T>): Promise<T>;
  open(flake: string): Promise<BuildRoots>;
}

/**
 * Where built closures go before their generation is handed over (FileBinaryCache): the
 * signed binary cache nodes substitute images from.
 */
export interface BinaryCache {
  publish(paths: readonly string[], signal?: AbortSignal): Promise<void>;
}

/**
 * The reconciler: where finished generations go (ApplyGeneration), and which revision a
 * flake runs now (GetStatus; undefined when none was ever applied).
 */
export interface GenerationSink {
  applyGeneration(
    request: ApplyGenerationRequest,
    signal?: AbortSignal,
    onRetry?: (attempt: number, error: Error) => void,
  ): Promise<ApplyGenerationResponse__Output>;
  appliedRevision(
    flakeUri: string,
    signal?: AbortSignal,
    onRetry?: (attempt: number, error: Error) => void,
  ): Promise<string | undefined>;
}

/** The flake's git history (GitHistory). */
export interface CommitHistory {
  /**
   * Where `commit` stands against `applied` on the branch: `descends` from it, on a
   * `rewritten` branch that no longer holds it, or `behind`; undefined when the flake is
   * no git repository and its history cannot be asked.
   */
  ancestry(
    flake: string,
    branch: string,
    applied: string,
    commit: string,
    signal?: AbortSignal,
  ): Promise<Ancestry | undefined>;
}

/** Build records and each flake's latest build (BuildsQueueConsumer). */
export interface BuildRecords {
  get(id: string): Promise<BuildRecord | undefined>;
  save(record: BuildRecord): Promise<void>;
  latest(flake: string): Promise<string | undefined>;
}

/**
 * Where the build's commit statuses go (ForgeStatuses): `report` only queues one, so a
 * forge that hangs or fails never holds a build up.
 */
export interface CommitStatusReporter {
  report(job: BuildJob, jobId: string, event: CommitStatusEvent, description: string): void;
}

export interface BuildContext {
  jobId: string;
  /** 1 for the first try. */
  attempt: number;
  /** The last try BullMQ will make; a retryable failure then fails the build. */
  finalAttempt: boolean;
  /** Fires when the worker must give the job back (shutdown past its grace period). */
  signal: AbortSignal;
}

export interface BuildServiceOptions {
  logBytes: number;
  /** Cancel a running build once a newer push of its flake is queued. */
  cancelSuperseded: boolean;
  /** How often a running build checks whether it was superseded. */
  supersedePollMs: number;
}

type FinalState = 'succeeded' | 'failed' | 'superseded' | 'superseded-by-history';

/** A build that did not succeed; `retryable` tells the worker whether to try again. */
export class BuildFailed extends Error {
  override readonly name = 'BuildFailed';

  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/**
 * One build of one flake revision: lock the revision, evaluate every seed's meta, build
 * every image, publish their closures to the binary cache (when there is one), compute the
 * generation and hand it to the reconciler, recording each step.
 */
export class BuildService {
  constructor(
    private readonly nix: NixSteps,
    /** Undefined when publishing is off: nodes must then share the builder's store. */
    private readonly cache: BinaryCache | undefined,
    private readonly keeper: BuildKeeper,
    private readonly reconciler: GenerationSink,
    private readonly history: CommitHistory,
    private readonly records: BuildRecords,
    private readonly statuses: CommitStatusReporter,
    private readonly metrics: BuilderMetrics,
    private readonly logger: Logger,
    private readonly options: BuildServiceOptions,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async run(job: BuildJob, context: BuildContext): Promise<BuildRecord> {
    const record =
      (await this.records.get(context.jobId)) ?? queuedBuildRecord(context.jobId, job, this.now());
    record.attempts = context.attempt;
    record.phases = {};
    // A record of an earlier run of this job (a retry, a replayed delivery) says nothing
    // about this one.
    for (const field of [
      'error',
      'reason',
      'generation',
      'namespace',
      'instances',
      'changed',
    ] as const)
      delete record[field];
    const log = this.logger.child({ jobId: context.jobId, flake: job.flake, commit: job.commit });
    if (context.attempt === 1) {
      this.metrics.queueWait.observe((this.now().getTime() - Date.parse(job.receivedAt)) / 1000);
      this.statuses.report(job, context.jobId, 'queued', 'queued: a builder took the build');
    }
    const latest = await this.records.latest(job.flake);
    if (latest !== undefined && latest !== context.jobId) {
      return this.finish(
        job,
        record,
        'superseded',
        'a newer push of the flake replaced this build',
        log,
      );
    }

    const watch = this.watchForNewerPush(job, context);
    this.metrics.inFlight.inc();
    try {
      return await this.steps(job, record, watch.signal, log);
    } catch (error) {
      if (watch.superseded()) {
        return this.finish(
          job,
          record,
          'superseded',
          'cancelled: a newer push of the flake was queued',
          log,
        );
      }
      throw await this.failed(job, record, error, context, log);
    } finally {
      watch.stop();
      this.metrics.inFlight.dec();
    }
  }

  /**
   * Records a build whose worker died under it more often than BullMQ lets a job stall
   * (the process crashed or its node was lost each time): it is failed without another
   * try, and its record says so instead of staying in the step it was in.
   */
  async abandon(jobId: string, job: BuildJob, stalls: number): Promise<void> {
    const record = (await this.records.get(jobId)) ?? queuedBuildRecord(jobId, job, this.now());
    if (FINAL_BUILD_STATES.has(record.state)) return;
    const message = `the worker running this build stopped ${stalls} times (crashed, killed or lost) before it finished: not tried again`;
    record.error = { kind: 'internal', message, retryable: false };
    appendLog(record, [`internal error: ${message}`], this.options.logBytes, this.now());
    await this.finish(job, record, 'failed', 'build failed', this.logger.child({ jobId }));
  }

  private async steps(
    job: BuildJob,
    record: BuildRecord,
    signal: AbortSignal,
    log: Logger,
  ): Promise<BuildRecord> {
    const branch = job.ref.slice('refs/heads/'.length);
    const reference = pinFlakeRef(job.flake, job.commit, branch).url;

    const backwards = await this.backwards(job, branch, record, signal, log);
    if (backwards !== undefined) {
      record.reason = backwards;
      return this.finish(job, record, 'superseded-by-history', backwards, log);
    }

    const built = await this.keeper.use(async () => {
      await this.enter(record, 'evaluating', `evaluating ${reference}`);
      this.statuses.report(
        job,
        record.id,
        'building',
        'building: evaluating and building the seeds',
      );
      const evaluated = await this.phase(record, 'evaluate', async () => {
        const locked = await this.nix.resolve(reference, { signal });
        return this.nix.evaluateSeeds(locked.url, { signal });
      });

      // Refused before anything is built: the reconciler would refuse it as well.
      const excess = job.quota
        ? quotaExcess(
            job.quota,
            evaluated.map((seed) => seed.meta),
          )
        : [];
      if (excess.length > 0)
        throw new QuotaExceeded(`exceeds the flake's caps: ${excess.join('; ')}`);

      await this.enter(
        record,
        'building',
        `building ${evaluated.length} image(s): ${evaluated.map((s) => s.name).join(', ') || '(none)'}`,
      );
      const roots = await this.keeper.open(job.flake);
      try {
        const images = await this.phase(record, 'build', () =>
          this.nix.buildImages(evaluated, { signal, outLink: roots.outLink }),
        );
        record.namespace = deriveNamespace(job.flake);
        record.generation = generationHash(images);
        record.instances = images.map(({ name, image }) => ({ name, image }));
        await this.publish(record, images, signal);
        await roots.seal(record.generation);
        return images;
      } catch (error) {
        await roots.discard();
        throw error;
      }
    });

    await this.enter(
      record,
      'applying',
      `applying generation ${record.generation} to ${record.namespace}`,
    );
    const applied = await this.phase(record, 'apply', () =>
      this.reconciler.applyGeneration(
        {
          flakeUri: job.flake,
          namespace: record.namespace,
          revision: job.commit,
          generation: record.generation,
          quota: job.quota,
          instances: built.map((seed) => ({
            name: seed.name,
            metaJson: JSON.stringify(seed.meta),
            image: seed.image,
          })),
        },
        signal,
        (attempt, error) => {
          log.warn({ attempt, err: error }, 'reconciler unavailable, retrying');
          appendLog(
            record,
            [`reconciler unavailable (attempt ${attempt}): ${error.message}`],
            this.options.logBytes,
            this.now(),
          );
        },
      ),
    );
    record.changed = applied.changed;
    return this.finish(
      job,
      record,
      'succeeded',
      applied.changed ? 'applied' : 'already applied: nothing changed',
      log,
    );
  }

  /** Before the reconciler hears of an image, every node can fetch it. */
  private async publish(record: BuildRecord, built: BuiltSeed[], signal: AbortSignal) {
    const cache = this.cache;
    if (cache === undefined || built.length === 0) return;
    await this.enter(
      record,
      'publishing',
      `publishing ${built.length} image closure(s) to the binary cache`,
    );
    await this.phase(record, 'publish', () =>
      cache.publish(
        built.map((seed) => seed.image),
        signal,
      ),
    );
  }

  /**
   * Only forward, unless asked: why deploying the job's commit would take the flake back
   * in history, or undefined when it may be deployed — it descends from the revision the
   * flake runs (or is it), the branch was rewritten so that it no longer holds that
   * revision and the commit is on it, the flake runs none yet, the push was forced, an
   * operator asked for it, or the flake is no git repository (its history cannot be
   * asked). The latest-push check cannot catch this: a replayed old delivery, or a late
   * one whose child was already applied, is its flake's latest push when it arrives.
   */
  private async backwards(
    job: BuildJob,
    branch: string,
    record: BuildRecord,
    signal: AbortSignal,
    log: Logger,
  ): Promise<string | undefined> {
    const note = (line: string) => appendLog(record, [line], this.options.logBytes, this.now());
    if (job.forced || job.allowBackward) {
      note(
        `${job.forced ? 'forced push' : 'an operator asked for it'}: deploys whether or not it descends from the applied revision`,
      );
      return undefined;
    }
    const applied = await this.reconciler.appliedRevision(job.flake, signal, (attempt, error) => {
      log.warn({ attempt, err: error }, 'reconciler unavailable, retrying');
      note(`reconciler unavailable (attempt ${attempt}): ${error.message}`);
    });
    if (applied === undefined || applied === job.commit) return undefined;
    const ancestry = await this.history.ancestry(job.flake, branch, applied, job.commit, signal);
    switch (ancestry) {
      case undefined:
        note(`not a git flake: whether it descends from the applied ${applied} is not checked`);
        return undefined;
      case 'descends':
        note(`descends from the applied revision ${applied}`);
        return undefined;
      case 'rewritten':
        note(`branch ${branch} was rewritten: the applied ${applied} is on it no more`);
        return undefined;
      case 'behind':
        return `commit ${job.commit} does not descend from ${applied}, the revision the flake runs, which is still on branch ${branch}: deploying it would go back in history (a replayed or late delivery); a forced push, or an operator, may deploy it`;
    }
  }

  /**
   * Polls the flake's latest build while this one runs; when a newer push is queued the
   * build is aborted (when configured) and its nix processes are killed.
   */
  private watchForNewerPush(job: BuildJob, context: BuildContext) {
    const controller = new AbortController();
    let replaced = false;
    const onShutdown = () => controller.abort(context.signal.reason);
    context.signal.addEventListener('abort', onShutdown, { once: true });
    const timer = this.options.cancelSuperseded
      ? setInterval(() => {
          this.records.latest(job.flake).then(
            (latest) => {
              if (latest !== undefined && latest !== context.jobId && !replaced) {
                replaced = true;
                controller.abort(new Error('superseded'));
              }
            },
            () => undefined, // Redis hiccup: check again next time
          );
        }, this.options.supersedePollMs)
      : undefined;
    return {
      signal: controller.signal,
      superseded: () => replaced,
      stop: () => {
        clearInterval(timer);
        context.signal.removeEventListener('abort', onShutdown);
      },
    };
  }

  private async phase<T>(record: BuildRecord, name: string, step: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await step();
    } finally {
      const seconds = (performance.now() - started) / 1000;
      record.phases[name] = Math.round(seconds * 1000);
      this.metrics.phaseSeconds.observe({ phase: name }, seconds);
    }
  }

  private async enter(record: BuildRecord, state: BuildState, line: string): Promise<void> {
    record.state = state;
    record.updatedAt = this.now().toISOString();
    appendLog(record, [line], this.options.logBytes, this.now());
    await this.records.save(record);
  }

  private async finish(
    job: BuildJob,
    record: BuildRecord,
    state: FinalState,
    line: string,
    log: Logger,
  ): Promise<BuildRecord> {
    await this.enter(record, state, line);
    // Forges know one "did not deploy, nothing failed" state: superseded.
    const event: CommitStatusEvent = state === 'superseded-by-history' ? 'superseded' : state;
    this.statuses.report(job, record.id, event, statusLine(record, state));
    this.metrics.outcomes.inc({ outcome: state });
    const total = Object.values(record.phases).reduce((sum, ms) => sum + ms, 0) / 1000;
    if (state === 'succeeded') this.metrics.buildSeconds.observe(total);
    log.info({ state, generation: record.generation, phases: record.phases }, `build ${state}`);
    return record;
  }

  /** Records why the build failed and decides whether another attempt may help. */
  private async failed(
    job: BuildJob,
    record: BuildRecord,
    error: unknown,
    context: BuildContext,
    log: Logger,
  ): Promise<BuildFailed> {
    const detail = describe(error);
    const shutdown = context.signal.aborted;
    const retryable = detail.retryable || shutdown;
    record.error = detail;
    const lines = [`${detail.kind} error: ${detail.message}`];
    if (detail.location) lines.push(`  at ${detail.location}`);
    if (detail.derivation) lines.push(`  derivation ${detail.derivation}`);
    if (detail.logTail?.length) lines.push(...detail.logTail.map((line) => `  > ${line}`));
    const final = !retryable || (context.finalAttempt && !shutdown);
    if (!final)
      lines.push(shutdown ? 'worker shutting down: the build will run again' : 'will retry');
    appendLog(record, lines, this.options.logBytes, this.now());
    await this.enter(
      record,
      final ? 'failed' : 'queued',
      final ? 'build failed' : 'build requeued',
    );
    if (final) this.metrics.outcomes.inc({ outcome: 'failed' });
    this.statuses.report(
      job,
      record.id,
      final ? 'failed' : 'queued',
      final ? statusLine(record, 'failed') : `queued: will retry after a ${detail.kind} error`,
    );
    log.warn(
      { err: error, kind: detail.kind, retryable, final },
      final ? 'build failed' : 'build will be retried',
    );
    return new BuildFailed(detail.message, retryable);
  }
}

/**
 * The line a forge shows for a finished build. A failure names its kind only: the record
 * behind the link has the message, and only people with the builder's token read it.
 */
function statusLine(record: BuildRecord, state: FinalState): string {
  if (state === 'superseded') return 'superseded by a newer push';
  if (state === 'superseded-by-history')
    return 'not deployed: does not descend from the commit the flake runs';
  if (state === 'failed') return `failed (${record.error?.kind ?? 'internal'})`;
  return record.changed === false
    ? `generation ${record.generation} already applied`
    : `generation ${record.generation} applied`;
}

/** The flake's instances need more than the registry's caps allow it. */
class QuotaExceeded extends Error {
  override readonly name = 'QuotaExceeded';
}

function describe(error: unknown): BuildError {
  if (error instanceof NixError) {
    return {
      kind: error.kind,
      message: error.message,
      retryable: error.retryable,
      location: error.location,
      derivation: error.derivation,
      logTail: error.logTail,
    };
  }
  if (error instanceof PublishFailed)
    return { kind: 'publish', message: error.message, retryable: true };
  if (error instanceof HistoryUnavailable)
    return { kind: 'history', message: error.message, retryable: error.retryable };
  if (error instanceof ReconcilerUnavailable)
    return { kind: 'reconciler-unavailable', message: error.message, retryable: true };
  if (error instanceof QuotaExceeded)
    return { kind: 'quota', message: error.message, retryable: false };
  if (error instanceof GenerationRejected)
    return { kind: 'rejected', message: error.message, retryable: false };
  return { kind: 'internal', message: (error as Error).message ?? String(error), retryable: true };
}
