import { CommanderError, InvalidArgumentError, type Command } from 'commander';

/** A commander argument parser: a whole number above zero (milliseconds, counts). */
export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0)
    throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

/**
 * Runs a commander program on argv (without node and script) and returns its exit code:
 * 0, commander's own for bad usage (it has already said why), else `onError`'s.
 */
export async function runProgram(
  program: Command,
  argv: readonly string[],
  onError: (error: unknown) => number,
): Promise<number> {
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    return onError(error);
  }
}
