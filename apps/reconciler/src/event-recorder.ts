import type { Logger } from '@seed/service-kit';
import type { KubeRepository } from './repositories/kube.repository';

type EventArgs = Parameters<KubeRepository['recordEvent']>;

/**
 * Sends Events in the background, one at a time, as client-go's event broadcaster does:
 * a reconcile (and the ApplyGeneration call waiting on it) does not wait for them, and
 * one at a time keeps the aggregation of repeats (create, else raise the count) free of
 * races. Bounded: when `capacity` Events are waiting, new ones are dropped and logged.
 * Events are for people; one that cannot be sent is logged, never retried.
 */
export class EventRecorder {
  private readonly waiting: EventArgs[] = [];
  private sending: Promise<void> | undefined;
  private dropped = 0;

  constructor(
    private readonly kube: Pick<KubeRepository, 'recordEvent'>,
    private readonly logger: Logger,
    private readonly capacity = 1000,
  ) {}

  record(...event: EventArgs): void {
    if (this.waiting.length >= this.capacity) {
      if (this.dropped++ === 0)
        this.logger.warn({ capacity: this.capacity }, 'too many Events waiting; dropping');
      return;
    }
    this.waiting.push(event);
    this.sending ??= this.drain();
  }

  /** Resolves once every Event recorded so far was sent (or failed), or after `timeoutMs`. */
  async flush(timeoutMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.sending,
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private async drain(): Promise<void> {
    for (let event = this.waiting.shift(); event; event = this.waiting.shift()) {
      try {
        await this.kube.recordEvent(...event);
      } catch (error) {
        this.logger.warn(
          { err: error, namespace: event[0].namespace, reason: event[2] },
          'could not record an Event',
        );
      }
    }
    if (this.dropped > 0) this.logger.warn({ dropped: this.dropped }, 'Events were dropped');
    this.dropped = 0;
    this.sending = undefined;
  }
}
