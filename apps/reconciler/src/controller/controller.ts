import type { Logger } from '@seed/service-kit';
import type { ExponentialRateLimiter } from './rate-limiter';
import { WorkQueue, type ProcessResult } from './work-queue';

/**
 * Brings one key's part of the world to its desired state, reading both fresh: level-based,
 * so it never needs to know which event queued the key. It returns when to look again
 * (`requeueAfterMs`), throws `TerminalError` for what retrying cannot fix, and anything
 * else to be retried with backoff.
 */
export interface Reconciler {
  reconcile(key: string): Promise<ProcessResult>;
}

export interface ControllerMetrics {
  reconcileSeconds: { startTimer(): (labels: { outcome: 'success' | 'error' }) => unknown };
}

/**
 * controller-runtime's Controller: owns the work queue, its workers, the reconcile metric
 * and the failure log around a `Reconciler`. Sources (informers, ApplyGeneration) only
 * `enqueue` keys. Keys are processed only while this replica leads; on becoming leader it
 * queues every key `allKeys` lists, since events seen before were not processed.
 */
export class Controller {
  private readonly queue: WorkQueue;
  private leading = false;

  constructor(
    reconciler: Reconciler,
    private readonly allKeys: () => Promise<string[]>,
    options: { workers: number; limiter: ExponentialRateLimiter },
    metrics: ControllerMetrics,
    private readonly logger: Logger,
  ) {
    this.queue = new WorkQueue(
      async (key) => {
        const stopTimer = metrics.reconcileSeconds.startTimer();
        try {
          const result = await reconciler.reconcile(key);
          stopTimer({ outcome: 'success' });
          return result;
        } catch (error) {
          stopTimer({ outcome: 'error' });
          throw error;
        }
      },
      options.limiter,
      options.workers,
      (key, error, retryInMs) =>
        logger.warn({ namespace: key, err: error, retryInMs }, 'reconcile failed'),
    );
  }

  get isLeading(): boolean {
    return this.leading;
  }

  /** Keys waiting to be processed. */
  get depth(): number {
    return this.queue.length;
  }

  enqueue(key: string): void {
    if (this.leading) this.queue.add(key);
  }

  /** Queues the key and resolves when a reconcile of it that started after this call ends. */
  enqueueAndWait(key: string): Promise<void> {
    return this.queue.addAndWait(key);
  }

  /** Starts processing, and resumes every key: a new leader converges without a push. */
  startLeading(): void {
    this.leading = true;
    this.allKeys().then(
      (keys) => keys.forEach((key) => this.enqueue(key)),
      (error: unknown) =>
        this.logger.warn({ err: error }, 'could not list flakes to resume; the next events will'),
    );
  }

  /** Stops taking keys and waits for those being reconciled. */
  async shutdown(): Promise<void> {
    this.leading = false;
    await this.queue.shutdown();
  }
}
