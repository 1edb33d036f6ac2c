/**
 * Per-key exponential backoff, as client-go's item rate limiter: each failure of a key
 * doubles its wait, up to a cap; success forgets it. Keys do not slow each other down.
 */
export class ExponentialRateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseMs = 100,
    private readonly maxMs = 60_000,
  ) {}

  /** Records a failure and returns how long the key should wait before its next try. */
  when(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    return Math.min(this.baseMs * 2 ** failures, this.maxMs);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}
