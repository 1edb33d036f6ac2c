import { InvalidArgumentError } from 'commander';

/** A commander argument parser: a whole number above zero (milliseconds, counts). */
export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0)
    throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}
