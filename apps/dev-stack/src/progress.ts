import { seconds } from '@seed/platform-client';

/** A step of `seed up` failed; the message names it so the user knows where to look. */
export class StepFailed extends Error {
  override readonly name = 'StepFailed';

  constructor(
    readonly step: string,
    cause: unknown,
    readonly interrupted = false,
  ) {
    super(`step "${step}" failed: ${(cause as Error).message ?? String(cause)}`, { cause });
  }
}

/**
 * Numbered steps with their duration, and notes while a step waits, so a user sees what
 * the stack is doing. The first failure is wrapped in StepFailed with the step's title.
 */
export class Progress {
  #index = 0;

  constructor(
    private readonly write: (text: string) => void,
    private readonly total: number,
    private readonly signal: AbortSignal,
  ) {}

  async step<T>(title: string, run: (note: (text: string) => void) => Promise<T>): Promise<T> {
    this.#index += 1;
    this.write(`==> [${this.#index}/${this.total}] ${title}\n`);
    const started = Date.now();
    try {
      this.signal.throwIfAborted();
      const result = await run((text) => this.write(`    ${text}\n`));
      this.write(`    ok (${seconds(Date.now() - started)})\n`);
      return result;
    } catch (error) {
      if (this.signal.aborted) {
        this.write('    interrupted\n');
        throw new StepFailed(title, error, true);
      }
      this.write(`    FAILED: ${(error as Error).message}\n`);
      throw new StepFailed(title, error);
    }
  }

  /** Free text between steps (the reports). */
  print(text: string): void {
    this.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** Calls `probe` every `intervalMs` until it returns a value, the deadline passes, or abort. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: { timeoutMs: number; signal: AbortSignal; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    options.signal.throwIfAborted();
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${options.timeoutMs} ms ${what}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 200));
  }
}
