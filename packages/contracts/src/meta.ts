import { z } from 'zod';

/**
 * The schema of `seeds.<name>.meta`, the JSON the builder evaluates and the reconciler
 * renders objects from. It mirrors nix/meta.nix, which produces it: the Nix side gives
 * users errors named after their `seed.*` options, this side guards the services against
 * anything else (a hand-written meta, an older Seed library) before it reaches Kubernetes.
 */

export const SIZE_TIERS = {
  xs: { vcpus: 1, memory: 512 },
  s: { vcpus: 1, memory: 1024 },
  m: { vcpus: 2, memory: 2048 },
  l: { vcpus: 4, memory: 4096 },
  xl: { vcpus: 8, memory: 8192 },
} as const;

export type SizeTier = keyof typeof SIZE_TIERS;

/**
 * What one flake may ask of a shared cluster, whatever its meta says. Generous for real
 * services, far below what would hurt the API server or a node: each expose entry is a
 * Service port, each storage entry a claim and a mount, each instance a Deployment.
 */
export const META_LIMITS = {
  instancesPerFlake: 64,
  exposeEntries: 16,
  storageEntries: 8,
  connectEntries: 32,
  /** Largest single volume, in bytes (16 TiB). */
  storageBytes: 16 * 2 ** 40,
} as const;

const QUANTITY_FACTORS: Record<string, number> = {
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

/** Bytes of a Kubernetes quantity ("1Gi", "500M", "1.5Gi"); undefined for text that is not one. */
export function quantityBytes(quantity: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec(quantity.trim());
  if (!match) return undefined;
  return Number(match[1]) * QUANTITY_FACTORS[match[2] ?? '']!;
}

export const EXPOSE_PROTOCOLS = ['tcp', 'udp', 'dns', 'http', 'grpc'] as const;
export type ExposeProtocol = (typeof EXPOSE_PROTOCOLS)[number];

// Instance names also name Services, which are DNS-1035 labels: they start with a letter.
const instanceName = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const optionKey = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const quantity = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
const dnsName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const port = z
  .number()
  .int({ error: 'expected an integer port' })
  .min(1, { error: 'port must be 1-65535' })
  .max(65535, { error: 'port must be 1-65535' });

const keyOf = (what: string, maxLength = 63) =>
  z
    .string()
    .max(maxLength, { error: `${what} keys are at most ${maxLength} characters` })
    .regex(optionKey, { error: `${what} keys are lower-case letters, digits and '-'` });

const exposeEntry = z.strictObject({ port, protocol: z.enum(EXPOSE_PROTOCOLS) });

const storageEntry = z.strictObject({
  size: z
    .string()
    .regex(quantity, { error: 'expected a Kubernetes quantity such as "1Gi"' })
    .refine((size) => (quantityBytes(size) ?? 0) <= META_LIMITS.storageBytes, {
      error: `a volume is at most 16Ti (Seed's limit per storage entry)`,
    }),
  mountPoint: z.string().startsWith('/', { error: 'mountPoint must be an absolute path' }),
});

const connectEntry = z.strictObject({
  service: z.string().max(253).regex(dnsName, { error: 'service must be a DNS name' }),
  port: port.nullable(),
});

const atMost =
  (limit: number) =>
  (record: Record<string, unknown>): boolean =>
    Object.keys(record).length <= limit;

/** Which transports a protocol occupies: dns is served on TCP and UDP alike. */
export function transportsOf(protocol: ExposeProtocol): ReadonlyArray<'TCP' | 'UDP'> {
  if (protocol === 'dns') return ['TCP', 'UDP'];
  return protocol === 'udp' ? ['UDP'] : ['TCP'];
}

export const seedMetaSchema = z
  .strictObject({
    name: z
      .string()
      .max(63, { error: 'instance names are at most 63 characters' })
      .regex(instanceName, {
        error: 'instance names are DNS-1035 labels (a-z, 0-9, -; a letter first)',
      }),
    system: z.string().min(1),
    size: z.enum(Object.keys(SIZE_TIERS) as [SizeTier, ...SizeTier[]]),
    resources: z.strictObject({
      vcpus: z.number().int().positive(),
      memory: z.number().int().positive(),
    }),
    // Service port names are IANA service names: 15 characters, no "--"; dns adds "-tcp"/"-udp".
    expose: z
      .record(
        keyOf('expose', 11).refine((key) => !key.includes('--'), {
          error: 'expose keys may not contain "--"',
        }),
        exposeEntry,
      )
      .refine(atMost(META_LIMITS.exposeEntries), {
        error: `at most ${META_LIMITS.exposeEntries} expose entries per instance (Seed's limit)`,
      }),
    storage: z.record(keyOf('storage'), storageEntry).refine(atMost(META_LIMITS.storageEntries), {
      error: `at most ${META_LIMITS.storageEntries} storage entries per instance (Seed's limit)`,
    }),
    connect: z.record(keyOf('connect'), connectEntry).refine(atMost(META_LIMITS.connectEntries), {
      error: `at most ${META_LIMITS.connectEntries} connect entries per instance (Seed's limit)`,
    }),
    rollout: z.enum(['recreate', 'rolling']),
    shoot: z.strictObject({ enable: z.boolean() }),
    // Whether the instance has a TPM (and so a node agent's swtpm): set by nix when
    // `seed.secrets` is not empty. Optional so that metas built before it still parse.
    tpm: z.boolean().optional(),
  })
  .superRefine((meta, ctx) => {
    const tier = SIZE_TIERS[meta.size];
    if (meta.resources.vcpus !== tier.vcpus || meta.resources.memory !== tier.memory) {
      ctx.addIssue({
        code: 'custom',
        path: ['resources'],
        message: `size "${meta.size}" means ${tier.vcpus} vCPU and ${tier.memory} MiB`,
      });
    }
    const owners = new Map<string, string>();
    for (const [key, entry] of Object.entries(meta.expose).sort(([a], [b]) => (a < b ? -1 : 1))) {
      for (const transport of transportsOf(entry.protocol)) {
        const slot = `${entry.port}/${transport}`;
        const owner = owners.get(slot);
        if (owner !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['expose', key, 'port'],
            message: `${slot} is already exposed by "${owner}"`,
          });
        }
        owners.set(slot, key);
      }
    }
  });

export type SeedMeta = z.infer<typeof seedMetaSchema>;
export type ExposeEntry = z.infer<typeof exposeEntry>;
export type StorageEntry = z.infer<typeof storageEntry>;
export type ConnectEntry = z.infer<typeof connectEntry>;

/** One problem with a meta document, located by its path from the meta's root. */
export interface MetaProblem {
  path: string;
  message: string;
}

export type MetaParseResult = { ok: true; meta: SeedMeta } | { ok: false; problems: MetaProblem[] };

/** Validates an evaluated meta; `expectedName` is the `seeds.<name>` attribute it came from. */
export function parseSeedMeta(value: unknown, expectedName?: string): MetaParseResult {
  const result = seedMetaSchema.safeParse(value);
  if (!result.success) {
    return {
      ok: false,
      problems: result.error.issues.map((issue) => ({
        path: issue.path.map(String).join('.'),
        // A bad record key reports "Invalid key in record"; the reason is one level down.
        message:
          (issue.code === 'invalid_key' ? issue.issues[0]?.message : undefined) ?? issue.message,
      })),
    };
  }
  if (expectedName !== undefined && result.data.name !== expectedName) {
    return {
      ok: false,
      problems: [
        {
          path: 'name',
          message: `"${result.data.name}" differs from its attribute "${expectedName}"`,
        },
      ],
    };
  }
  return { ok: true, meta: result.data };
}

/** Serialises a value as JSON with object keys sorted at every depth, so equal metas hash alike. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner;
    const record = inner as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record)
        .sort()
        .map((key) => [key, record[key]]),
    );
  });
}
