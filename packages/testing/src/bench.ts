/** Helpers every benchmark under bench/ uses to run and print its figures. */

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A bench setting: its default, and the least value it takes (1 unless said). */
export type BenchSetting = number | { default: number; min: number };

/**
 * Whole-number settings from the environment, each variable with its default. Every bad
 * value is reported by name at once; throws a BenchInputError listing them.
 */
export function parseBenchSettings<K extends string>(
  settings: Record<K, BenchSetting>,
  env: NodeJS.ProcessEnv,
): Record<K, number> {
  const values = {} as Record<K, number>;
  const problems: string[] = [];
  for (const name of Object.keys(settings) as K[]) {
    const setting = settings[name];
    const { default: fallback, min } =
      typeof setting === 'number' ? { default: setting, min: 1 } : setting;
    const raw = env[name];
    const value = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isSafeInteger(value) || value < min) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected a whole number, at least ${min}`);
    }
    values[name] = value;
  }
  if (problems.length > 0) throw new BenchInputError(problems);
  return values;
}

/** Input a bench cannot run with: its message is for the person who started it. */
export class BenchInputError extends Error {
  override readonly name = 'BenchInputError';

  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/**
 * A bench's settings (parseBenchSettings over process.env). Bad input ends the process with
 * the problems and exit code 2, as a CLI's argument parser does: call it at the top level,
 * before the bench starts anything that would need stopping.
 */
export function benchSettings<K extends string>(
  bench: string,
  settings: Record<K, BenchSetting>,
): Record<K, number> {
  try {
    return parseBenchSettings(settings, process.env);
  } catch (error) {
    if (!(error instanceof BenchInputError)) throw error;
    printBadInput(bench, error);
    process.exit(2);
  }
}

function printBadInput(bench: string, error: BenchInputError): void {
  for (const problem of error.problems) console.error(`${bench}: ${problem}`);
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
 * Runs a benchmark's main: a failure sets exit code 1, bad input (a BenchInputError) 2
 * with its message alone; its clean-ups run when it ends, and on SIGINT or SIGTERM before
 * exiting.
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
      if (error instanceof BenchInputError) {
        printBadInput(name, error);
        process.exitCode = 2;
        return;
      }
      console.error(error);
      process.exitCode = 1;
    })
    .finally(() => cleanups.runAll());
}
