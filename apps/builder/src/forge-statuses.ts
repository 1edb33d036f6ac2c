import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  commitStatusRequest,
  redactFlakeRef,
  type BuildJob,
  type CommitStatusEvent,
  type Forge,
  type StatusTarget,
} from '@seed/contracts';
import type { Logger } from '@seed/service-kit';

export interface ForgeStatusOptions {
  /** The build's record as people open it: `<buildsUrl>/<job id>`. */
  buildsUrl: string;
  /** Tries per status before it is dropped. */
  attempts: number;
  /** Pause after the first failed try, doubled after each further one. */
  backoffMs: number;
  /** Deadline of one request. */
  timeoutMs: number;
  /** Statuses held at once, all flakes together; past it the oldest of the flake goes. */
  capacity: number;
}

/** What each status came to, for `seed_builder_forge_statuses_total{forge,result}`. */
export type StatusResult = 'sent' | 'retried' | 'rejected' | 'dropped';

interface Pending {
  job: BuildJob;
  jobId: string;
  event: CommitStatusEvent;
  description: string;
  tries: number;
}

type Attempt = 'sent' | 'rejected' | 'retry';

/**
 * Commit statuses on their way to the forges, off the builds' path: `report` only puts
 * one in a bounded queue in memory and returns, so a forge that hangs or fails costs a
 * build nothing. One sender per flake sends its statuses in order (a commit's `queued`
 * before its `succeeded`), each with a deadline and bounded retries, then drops it with
 * a log line. Statuses are a courtesy to the forge's users: a lost one (a restart, a full
 * queue) is logged and counted, never retried from Redis.
 */
export class ForgeStatuses {
  private readonly queues = new Map<string, Pending[]>();
  private readonly draining = new Set<string>();
  private readonly stopping = new AbortController();
  private held = 0;

  constructor(
    private readonly options: ForgeStatusOptions,
    private readonly count: (forge: Forge, result: StatusResult) => void,
    private readonly logger: Logger,
  ) {}

  /** Queues a status of the build's commit, when its flake has a forge to tell (the job says). */
  report(job: BuildJob, jobId: string, event: CommitStatusEvent, description: string): void {
    if (this.stopping.signal.aborted || job.forgeStatus === undefined) return;
    const queue = this.queues.get(job.flake) ?? [];
    this.queues.set(job.flake, queue);
    if (this.held >= this.options.capacity) {
      // The oldest of this flake's waiting statuses (not the one in flight) gives way: the
      // newest says most about the commit.
      const dropped = queue.length > 1 ? queue.splice(1, 1)[0] : undefined;
      if (dropped === undefined) {
        this.drop({ job, jobId, event, description, tries: 0 }, 'the status queue is full');
        return;
      }
      this.held -= 1;
      this.drop(dropped, 'the status queue is full');
    }
    queue.push({ job, jobId, event, description, tries: 0 });
    this.held += 1;
    if (!this.draining.has(job.flake)) {
      this.draining.add(job.flake);
      void this.drain(job.flake, queue).finally(() => this.draining.delete(job.flake));
    }
  }

  /**
   * Stops sending: what is queued gets up to `graceMs` to go (the last builds' final
   * statuses), then the rest is dropped (logged).
   */
  async close(graceMs = 5_000): Promise<void> {
    for (const deadline = Date.now() + graceMs; this.held > 0 && Date.now() < deadline;)
      await sleep(50);
    this.stopping.abort();
    for (const queue of this.queues.values())
      for (const pending of queue.splice(0)) this.drop(pending, 'the builder is stopping');
    this.held = 0;
  }

  private async drain(flake: string, queue: Pending[]): Promise<void> {
    while (queue.length > 0 && !this.stopping.signal.aborted) {
      const pending = queue[0]!;
      const attempt = await this.send(pending, pending.job.forgeStatus!);
      if (attempt === 'retry' && pending.tries < this.options.attempts) {
        this.count(pending.job.forge, 'retried');
        await this.pause(this.options.backoffMs * 2 ** (pending.tries - 1));
        continue;
      }
      if (queue[0] !== pending) continue; // close() emptied the queue meanwhile
      queue.shift();
      this.held -= 1;
      if (attempt === 'retry') this.drop(pending, `no answer after ${pending.tries} tries`);
      else this.count(pending.job.forge, attempt);
    }
    if (queue.length === 0) this.queues.delete(flake);
  }

  private async send(pending: Pending, target: StatusTarget): Promise<Attempt> {
    pending.tries += 1;
    const { job, jobId, event } = pending;
    const log = this.logger.child({
      jobId,
      flake: redactFlakeRef(job.flake),
      commit: job.commit,
      forge: job.forge,
      status: event,
      try: pending.tries,
    });
    let token: string;
    try {
      token = (await readFile(target.tokenFile, 'utf8')).trim();
    } catch (error) {
      log.warn(
        { file: target.tokenFile, reason: (error as Error).message },
        'cannot read the forge token file',
      );
      return 'retry';
    }
    const request = commitStatusRequest(
      job.forge,
      target.api,
      target.repository,
      job.commit,
      {
        event,
        description: pending.description,
        targetUrl: `${this.options.buildsUrl}/${jobId}`,
      },
      token,
    );
    try {
      const response = await fetch(request.url, {
        method: 'POST',
        headers: request.headers,
        body: JSON.stringify(request.body),
        redirect: 'error',
        signal: AbortSignal.any([
          AbortSignal.timeout(this.options.timeoutMs),
          this.stopping.signal,
        ]),
      });
      await response.body?.cancel();
      if (response.ok) return 'sent';
      // 408, 429 and 5xx may pass; anything else (a wrong token's 401, a repository the
      // token cannot see) will not, and is logged for the operator. Never the token.
      const passing = response.status === 408 || response.status === 429 || response.status >= 500;
      log.warn(
        { httpStatus: response.status },
        passing
          ? 'the forge did not take the commit status; trying again'
          : "the forge refused the commit status: check the token in the flake's forgeStatus.tokenFile and its repository",
      );
      return passing ? 'retry' : 'rejected';
    } catch (error) {
      log.warn({ reason: (error as Error).message }, 'the forge did not answer the commit status');
      return 'retry';
    }
  }

  private drop(pending: Pending, why: string): void {
    this.count(pending.job.forge, 'dropped');
    this.logger.warn(
      {
        jobId: pending.jobId,
        flake: redactFlakeRef(pending.job.flake),
        commit: pending.job.commit,
        forge: pending.job.forge,
        status: pending.event,
      },
      `commit status dropped: ${why}`,
    );
  }

  private pause(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.stopping.signal }).catch(() => undefined);
  }
}
