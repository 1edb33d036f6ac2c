import { z } from 'zod';
import { META_LIMITS, SIZE_TIERS, quantityBytes, type SeedMeta } from './meta';

/**
 * A flake's bounds: what all of its instances together may take of the cluster. The
 * operator sets them per flake in the webhook's registry; they travel with the build job
 * and in `ApplyGeneration`, and the reconciler writes them as the ResourceQuota of the
 * flake's namespace. The names are the ResourceQuota's: `cpu` and `memory` are what the
 * pods request, `storage` what the claims request.
 */
export interface FlakeQuota {
  /** CPU quantity ("8", "500m"). */
  cpu: string;
  /** Byte quantity ("16Gi"). */
  memory: string;
  /** Byte quantity: the sum of every claim's size. */
  storage: string;
  pods: number;
  persistentvolumeclaims: number;
  services: number;
}

export const FLAKE_QUOTA_FIELDS = [
  'cpu',
  'memory',
  'storage',
  'pods',
  'persistentvolumeclaims',
  'services',
] as const satisfies readonly (keyof FlakeQuota)[];

/**
 * What the scheduler reserves for one instance's pod: k8s-model renders these requests,
 * and the API server counts them against the quota. A quarter core per vCPU (vCPUs are
 * time-shared), the tier's whole memory, and the VM's own cost, the `kata` RuntimeClass's
 * `overhead.podFixed` (deploy/manifests/runtimeclass.yaml), which Kubernetes adds to every
 * pod's usage.
 */
export const INSTANCE_POD = {
  cpuMillisPerVcpu: 250,
  overhead: { cpuMillis: 250, memoryMiB: 160 },
} as const;

/** A Kubernetes quantity, exactly: thousandths of its unit, and how it was written. */
interface ParsedQuantity {
  units: bigint;
  /** `binary` for the suffixes Ki…Ei; the API server keeps writing a quantity that way. */
  format: 'decimal' | 'binary';
}

const DECIMAL_SUFFIXES = ['', 'k', 'M', 'G', 'T', 'P', 'E'] as const;
const BINARY_SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'] as const;
const QUANTITY = /^([0-9]+)(?:\.([0-9]+))?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The quantity in thousandths of its unit, or undefined when it is not one Seed takes. */
function parseQuantity(text: string): ParsedQuantity | undefined {
  const match = QUANTITY.exec(text);
  if (!match) return undefined;
  const [, whole = '', fraction = '', suffix = ''] = match;
  const binary = (BINARY_SUFFIXES as readonly string[]).indexOf(suffix);
  const decimal = (DECIMAL_SUFFIXES as readonly string[]).indexOf(suffix);
  const multiplier =
    suffix === 'm'
      ? 1n
      : binary > 0
        ? 1024n ** BigInt(binary) * 1000n
        : 1000n ** BigInt(decimal + 1);
  const scaled = BigInt(whole + fraction) * multiplier;
  const divisor = 10n ** BigInt(fraction.length);
  if (scaled % divisor !== 0n) return undefined; // finer than a thousandth
  return { units: scaled / divisor, format: binary > 0 ? 'binary' : 'decimal' };
}

/**
 * The form the API server stores a quantity in ("1024Mi" → "1Gi", "0.5" → "500m"), so a
 * rendered quota reads back byte for byte and an unchanged one is never written again.
 * Undefined for text that is not a quantity.
 */
export function canonicalQuantity(text: string): string | undefined {
  const parsed = parseQuantity(text);
  if (!parsed) return undefined;
  const { units, format } = parsed;
  if (units % 1000n !== 0n) return `${units}m`;
  const whole = units / 1000n;
  if (whole === 0n) return '0';
  const [base, suffixes] =
    format === 'binary' ? [1024n, BINARY_SUFFIXES] : ([1000n, DECIMAL_SUFFIXES] as const);
  let power = suffixes.length - 1;
  while (power > 0 && whole % base ** BigInt(power) !== 0n) power--;
  return `${whole / base ** BigInt(power)}${suffixes[power]}`;
}

/** Thousandths of a core. */
function cpuMillis(text: string): number {
  return Number(parseQuantity(text)!.units);
}

function bytes(text: string): number {
  return Number(parseQuantity(text)!.units / 1000n);
}

const cpuQuantity = z
  .string()
  .refine((text) => parseQuantity(text)?.format === 'decimal' && cpuMillis(text) > 0, {
    error: 'expected a CPU quantity above zero, such as "8" or "500m"',
  });

const byteQuantity = z.string().refine(
  (text) => {
    const parsed = parseQuantity(text);
    return parsed !== undefined && parsed.units > 0n && parsed.units % 1000n === 0n;
  },
  { error: 'expected a whole number of bytes above zero, such as "16Gi" or "500M"' },
);

const count = z
  .number({ error: 'expected a whole number' })
  .int({ error: 'expected a whole number' })
  .min(1, { error: 'expected at least 1' })
  .max(2 ** 31 - 1, { error: 'expected at most 2147483647' });

/** A complete quota, as the build job and `ApplyGeneration` carry it. */
export const flakeQuotaSchema = z.strictObject({
  cpu: cpuQuantity,
  memory: byteQuantity,
  storage: byteQuantity,
  pods: count,
  persistentvolumeclaims: count,
  services: count,
});

/** What the operator may write in the registry: any of the caps; the rest are defaults. */
export const flakeQuotaOverridesSchema = flakeQuotaSchema.partial();

/** What a flake's instances take at their peak, in plain numbers. */
export interface FlakeNeeds {
  cpuMillis: number;
  memoryBytes: number;
  storageBytes: number;
  pods: number;
  persistentvolumeclaims: number;
  services: number;
}

/**
 * What the instances of a generation request at their peak: a rolling instance runs a
 * second pod while it rolls (surge 1), and a push may roll all of them at once; every
 * storage entry is a claim of its size; every instance that exposes a port is a Service.
 * Claims of instances that left the flake are kept by Seed and still count at the API
 * server, which this, knowing only the generation, cannot see.
 */
export function flakeNeeds(metas: readonly SeedMeta[]): FlakeNeeds {
  const needs: FlakeNeeds = {
    cpuMillis: 0,
    memoryBytes: 0,
    storageBytes: 0,
    pods: 0,
    persistentvolumeclaims: 0,
    services: 0,
  };
  for (const meta of metas) {
    const pods = meta.rollout === 'rolling' ? 2 : 1;
    needs.pods += pods;
    needs.cpuMillis +=
      pods *
      (meta.resources.vcpus * INSTANCE_POD.cpuMillisPerVcpu + INSTANCE_POD.overhead.cpuMillis);
    needs.memoryBytes += pods * (meta.resources.memory + INSTANCE_POD.overhead.memoryMiB) * 2 ** 20;
    for (const entry of Object.values(meta.storage)) {
      needs.persistentvolumeclaims += 1;
      needs.storageBytes += quantityBytes(entry.size) ?? 0;
    }
    if (Object.keys(meta.expose).length > 0) needs.services += 1;
  }
  return needs;
}

/**
 * Every cap of `quota` the instances would pass, as one message each naming the cap
 * (`quota.<field>`), what the instances need and the cap; empty when they fit.
 */
export function quotaExcess(quota: FlakeQuota, metas: readonly SeedMeta[]): string[] {
  const needs = flakeNeeds(metas);
  const checks: [keyof FlakeQuota, number, number, string][] = [
    ['cpu', needs.cpuMillis, cpuMillis(quota.cpu), cpuText(needs.cpuMillis)],
    ['memory', needs.memoryBytes, bytes(quota.memory), byteText(needs.memoryBytes)],
    ['storage', needs.storageBytes, bytes(quota.storage), byteText(needs.storageBytes)],
    ['pods', needs.pods, quota.pods, String(needs.pods)],
    [
      'persistentvolumeclaims',
      needs.persistentvolumeclaims,
      quota.persistentvolumeclaims,
      String(needs.persistentvolumeclaims),
    ],
    ['services', needs.services, quota.services, String(needs.services)],
  ];
  const rolling = metas.some((meta) => meta.rollout === 'rolling');
  return checks
    .filter(([, need, cap]) => need > cap)
    .map(
      ([field, , , need]) =>
        `quota.${field}: the instances ${field === 'storage' ? 'claim' : 'request'} ${need}${rolling && PER_POD.has(field) ? ' at their peak (a rolling instance runs two pods while it rolls)' : ''}, above the flake's cap of ${quota[field]}`,
    );
}

/** Caps a rolling instance's second pod counts against. */
const PER_POD = new Set<keyof FlakeQuota>(['cpu', 'memory', 'pods']);

function cpuText(millis: number): string {
  return canonicalQuantity(`${millis}m`)!;
}

function byteText(count: number): string {
  return canonicalQuantity(count % 1024 === 0 ? `${count / 1024}Ki` : String(count))!;
}

/**
 * The caps of a flake the operator gave none for: what the largest flake Seed's meta
 * limits accept needs (every instance at the biggest tier, rolling, with every storage
 * entry at the largest size), so the defaults never refuse a valid flake. Operators of
 * shared clusters set smaller ones per flake.
 */
export const DEFAULT_FLAKE_QUOTA: FlakeQuota = (() => {
  const [biggest] = Object.values(SIZE_TIERS).sort((a, b) => b.memory - a.memory);
  const needs = flakeNeeds(
    Array.from({ length: META_LIMITS.instancesPerFlake }, () => ({
      name: 'x',
      system: 'x86_64-linux',
      size: 'xl',
      resources: { vcpus: biggest!.vcpus, memory: biggest!.memory },
      expose: { http: { port: 80, protocol: 'http' } },
      storage: Object.fromEntries(
        Array.from({ length: META_LIMITS.storageEntries }, (_, index) => [
          `v${index}`,
          { size: `${META_LIMITS.storageBytes / 2 ** 40}Ti`, mountPoint: `/v${index}` },
        ]),
      ),
      connect: {},
      rollout: 'rolling',
      shoot: { enable: false },
    })),
  );
  return {
    cpu: cpuText(needs.cpuMillis),
    memory: byteText(needs.memoryBytes),
    storage: byteText(needs.storageBytes),
    pods: needs.pods,
    persistentvolumeclaims: needs.persistentvolumeclaims,
    services: needs.services,
  };
})();

/** The registry's caps over the defaults. */
export function withQuotaDefaults(overrides: Partial<FlakeQuota> = {}): FlakeQuota {
  return { ...DEFAULT_FLAKE_QUOTA, ...overrides };
}

/** The quota with every quantity in the API server's form. */
export function canonicalFlakeQuota(quota: FlakeQuota): FlakeQuota {
  return {
    ...quota,
    cpu: canonicalQuantity(quota.cpu) ?? quota.cpu,
    memory: canonicalQuantity(quota.memory) ?? quota.memory,
    storage: canonicalQuantity(quota.storage) ?? quota.storage,
  };
}
