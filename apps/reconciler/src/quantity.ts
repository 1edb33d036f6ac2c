// Kubernetes resource quantities ("1Gi", "500M", "1.5Gi"), enough to compare storage sizes.
const SUFFIXES: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** Bytes of a storage quantity; undefined for text that is not one. */
export function quantityBytes(quantity: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec(quantity.trim());
  if (!match) return undefined;
  return Number(match[1]) * SUFFIXES[match[2] ?? '']!;
}

/** The larger of two sizes, so a volume may grow but never shrink. */
export function largerQuantity(desired: string, current: string | undefined): string {
  if (current === undefined) return desired;
  const [want, have] = [quantityBytes(desired), quantityBytes(current)];
  if (want === undefined || have === undefined) return desired;
  return have > want ? current : desired;
}
