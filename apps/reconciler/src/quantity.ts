import { quantityBytes } from '@seed/contracts';

/** The larger of two sizes, so a volume may grow but never shrink. */
export function largerQuantity(desired: string, current: string | undefined): string {
  if (current === undefined) return desired;
  const [want, have] = [quantityBytes(desired), quantityBytes(current)];
  if (want === undefined || have === undefined) return desired;
  return have > want ? current : desired;
}
