import { QueueLimitReached } from '@seed/builds-queue';
import { buildJobId, flakeKey, redactFlakeRef } from '@seed/contracts';
import type { Logger } from '@seed/service-kit';
import { branchBuild, type BranchHead, type FlakeBranch } from './branch-head';
import type { WebhookMetrics } from './metrics';
import type { BuildsQueue } from './webhook.service';

/** A flake polling follows: its branch, and how often. */
export interface PolledFlake extends FlakeBranch {
  intervalMs: number;
}

/** The builds queue as polling uses it: queue a build, and know a flake's latest one. */
export interface PolledQueue extends BuildsQueue {
  latestJobId(flake: string): Promise<string | null>;
}

export type PollOutcome = 'unchanged' | 'queued' | 'unreachable' | 'over-limit' | 'unavailable';

/**
 * The safety net under webhooks: every interval (jittered, so flakes sharing one do not
 * poll together) each flake's branch head is read; a head that is not the flake's latest
 * build is queued exactly as a push delivery would be (same job id, so a webhook and a
 * poll never build one commit twice). A missed or refused delivery, or one answered 503
 * while Redis was away, is caught up within one interval with nothing resent by hand.
 */
export class BranchPoller {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<PollOutcome>>();
  private flakes = new Map<string, PolledFlake>();
  private started = false;
  private stopped = false;

  constructor(
    flakes: readonly PolledFlake[],
    private readonly readHead: (flake: FlakeBranch) => Promise<BranchHead>,
    private readonly builds: PolledQueue,
    private readonly metrics: WebhookMetrics,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
    private readonly now: () => Date = () => new Date(),
    private readonly onQueued: (flake: string, commit: string) => void = () => undefined,
  ) {
    this.flakes = new Map(flakes.map((flake) => [flake.flake, flake]));
  }

  /** The first poll of each flake comes at a random point of its first interval. */
  start(): void {
    this.started = true;
    for (const flake of this.flakes.values()) this.firstPoll(flake);
  }

  /**
   * Follows the registry as it changes: a new or changed flake is polled from a random
   * point of its interval, an unchanged one keeps its rhythm, a removed one stops.
   */
  replan(flakes: readonly PolledFlake[]): void {
    const next = new Map(flakes.map((flake) => [flake.flake, flake]));
    const previous = this.flakes;
    this.flakes = next;
    if (!this.started) return;
    for (const [key, flake] of next) {
      if (JSON.stringify(previous.get(key)) === JSON.stringify(flake)) continue;
      clearTimeout(this.timers.get(key));
      this.firstPoll(flake);
    }
    for (const key of previous.keys()) {
      if (next.has(key)) continue;
      clearTimeout(this.timers.get(key));
      this.timers.delete(key);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled(this.running);
  }

  /** Reads one flake's head and queues it if it is new; never throws. */
  async poll(flake: PolledFlake): Promise<PollOutcome> {
    const log = this.logger.child({ flake: redactFlakeRef(flake.flake) });
    let outcome: PollOutcome;
    try {
      outcome = await this.check(flake, log);
    } catch (error) {
      outcome = error instanceof QueueLimitReached ? 'over-limit' : 'unavailable';
      log.warn({ err: error }, 'poll could not queue the branch head; next interval retries');
    }
    this.metrics.polls.inc({ outcome });
    return outcome;
  }

  private async check(flake: PolledFlake, log: Logger): Promise<PollOutcome> {
    let head: BranchHead;
    try {
      head = await this.readHead(flake);
    } catch (error) {
      log.warn({ reason: (error as Error).message }, 'poll could not read the branch head');
      return 'unreachable';
    }
    const jobId = buildJobId(flake.flake, head.commit);
    const latest = await this.builds.latestJobId(flake.flake);
    // An operator's rebuild of the head is the head's latest build too.
    if (latest === jobId || latest?.startsWith(`${jobId}-rebuild-`)) return 'unchanged';
    // One delivery id per flake and commit: polls of an unchanged head dedupe as resends.
    const deliveryId = `poll-${flakeKey(flake.flake)}-${head.commit}`;
    const job = branchBuild(flake, head, deliveryId, this.now());
    const record = await this.builds.queue(flake.forge, deliveryId, [job]);
    if (record.duplicate) return 'unchanged';
    if (!record.builds[0]!.created) {
      // Built or queued before, within the dedupe window, though not the flake's latest
      // (a branch moved back, or an operator rebuilt an older commit since): nothing new.
      log.info(
        { commit: head.commit, jobId },
        'poll found a branch head built before; nothing queued',
      );
      return 'unchanged';
    }
    log.info({ commit: head.commit, jobId }, 'poll found a new branch head; build queued');
    this.onQueued(flake.flake, head.commit);
    return 'queued';
  }

  private firstPoll(flake: PolledFlake): void {
    this.schedule(flake, this.random() * flake.intervalMs);
  }

  private schedule(flake: PolledFlake, delayMs: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      const polled = this.poll(flake);
      this.running.add(polled);
      void polled.finally(() => {
        this.running.delete(polled);
        // Replanned meanwhile: the new plan has scheduled its own poll, or none.
        if (this.flakes.get(flake.flake) !== flake) return;
        this.schedule(flake, flake.intervalMs * (0.9 + 0.2 * this.random()));
      });
    }, delayMs);
    timer.unref();
    this.timers.set(flake.flake, timer);
  }
}
