/** Helpers every benchmark under bench/ uses to run and print its figures. */

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A row printer: the label padded to `width`, then the value. */
export function rowPrinter(width: number): (label: string, value: string) => void {
  return (label, value) => console.log(`${label.padEnd(width)} ${value}`);
}

/** What a benchmark started, stopped once, last first, however the benchmark ends. */
export class BenchCleanups {
  readonly #steps: { what: string; run: () => unknown }[] = [];
  #running: Promise<void> | undefined;

  constructor(private readonly name: string) {}

  add(what: string, run: () => unknown): void {
    this.#steps.push({ what, run });
  }

  /** Stops a service process (or what wraps one) and says so if SIGTERM did not end it well. */
  addProcess(
    what: string,
    service: { stop(graceMs: number): Promise<string> },
    graceMs = 15_000,
  ): void {
    this.add(what, async () => {
      const how = await service.stop(graceMs);
      if (how !== 'exit 0') console.error(`${this.name}: ${what} on SIGTERM: ${how}`);
    });
  }

  /** Runs the steps, last first; a second call (a signal as main ends) waits for the first. */
  runAll(): Promise<void> {
    this.#running ??= this.#run();
    return this.#running;
  }

  async #run(): Promise<void> {
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
      try {
        await step.run();
      } catch (error) {
        console.error(`${this.name}: could not stop ${step.what}:`, error);
      }
    }
  }
}

/**
 * Runs a benchmark's main: a failure sets exit code 1; its clean-ups run when it ends,
 * and on SIGINT or SIGTERM before exiting.
 */
export function runBench(name: string, main: (cleanups: BenchCleanups) => Promise<void>): void {
  const cleanups = new BenchCleanups(name);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${name}: ${signal}: stopping`);
      void cleanups.runAll().finally(() => process.exit(130));
    });
  }
  main(cleanups)
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(() => cleanups.runAll());
}
