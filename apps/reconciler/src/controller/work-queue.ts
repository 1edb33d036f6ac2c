import type { ExponentialRateLimiter } from './rate-limiter';

/** What one processing of a key decided. */
export interface ProcessResult {
  /** Look at the key again after this long even if nothing changes (periodic resync). */
  requeueAfterMs?: number;
}

/** A failure that retrying will not fix (an invalid spec): no backoff loop for it. */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * A level-based work queue like client-go's: a key is queued at most once, never processed
 * by two workers at once (a key changed while in process is processed again afterwards),
 * and failures come back after a per-key exponential backoff. Callers may wait for the
 * next processing of a key to finish.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  private readonly waiters = new Map<string, Waiter[]>();
  private active = 0;
  private stopped = false;
  private idle: (() => void) | undefined;

  constructor(
    private readonly process: (key: string) => Promise<ProcessResult>,
    private readonly limiter: ExponentialRateLimiter,
    private readonly concurrency: number,
    private readonly onError: (key: string, error: Error, retryInMs: number | undefined) => void,
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** Queues the key after a delay; of two pending delays for one key, the sooner wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    const due = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.due <= due) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    this.timers.set(key, { timer, due });
  }

  /** Queues the key now and resolves when a processing that started after this call ends. */
  addAndWait(key: string): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      const list = this.waiters.get(key) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(key, list);
    });
    this.add(key);
    return done;
  }

  get length(): number {
    return this.queue.length;
  }

  /** Stops taking keys and waits for those in process. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    if (this.active > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    for (const list of this.waiters.values())
      for (const waiter of list) waiter.reject(new Error('shutting down'));
    this.waiters.clear();
  }

  private pump(): void {
    while (!this.stopped && this.active < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    this.active += 1;
    this.processing.add(key);
    // Waiters registered from here on wait for the next processing of the key.
    const waiting = this.waiters.get(key) ?? [];
    this.waiters.delete(key);
    try {
      const result = await this.process(key);
      this.limiter.forget(key);
      for (const waiter of waiting) waiter.resolve();
      if (result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      const retryIn = failure instanceof TerminalError ? undefined : this.limiter.when(key);
      if (retryIn === undefined) this.limiter.forget(key);
      else this.addAfter(key, retryIn);
      this.onError(key, failure, retryIn);
      for (const waiter of waiting) waiter.reject(failure);
    } finally {
      this.processing.delete(key);
      this.active -= 1;
      if (this.dirty.delete(key)) this.add(key);
      if (this.active === 0) this.idle?.();
      this.pump();
    }
  }
}
