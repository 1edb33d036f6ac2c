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

/**
 * Runs a benchmark's main: a failure sets exit code 1, and SIGINT or SIGTERM run its
 * clean-up (stop the servers and VMs it started) before exiting.
 */
export function runBench(
  name: string,
  main: () => Promise<void>,
  cleanUp?: () => Promise<void>,
): void {
  if (cleanUp) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        console.error(`${name}: ${signal}: stopping`);
        void cleanUp().finally(() => process.exit(130));
      });
    }
  }
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
