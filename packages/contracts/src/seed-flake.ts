import { z } from 'zod';
import { parseFlakeRef } from './flake-ref';
import { forgeStatusSchema } from './forge-status';
import { FORGES } from './jobs';
import { flakeQuotaOverridesSchema } from './quota';

/**
 * The SeedFlake resource (deploy/manifests/seedflake-crd.yaml): one flake Seed serves.
 * The operator writes its spec; the webhook follows the specs, the reconciler writes the
 * status. The CRD's schema is what the API server enforces; the schemas here are the
 * same checks for readers that take specs from elsewhere (the registry document that
 * seeds the local stack) and for what a reader of the status may rely on.
 */
export const SEED_FLAKE_API = {
  group: 'seed.loom.farm',
  version: 'v1alpha1',
  apiVersion: 'seed.loom.farm/v1alpha1',
  kind: 'SeedFlake',
  plural: 'seedflakes',
} as const;

/** The builds a flake may have waiting for a builder when its spec does not say. */
export const DEFAULT_MAX_QUEUED_BUILDS = 5;

// git check-ref-format, the parts that matter for a branch name.
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
const BRANCH = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[^\s~^:?*[\\\x00-\x1f\x7f]+(?<![./])$/;

/** What the operator says of a flake, but where its webhook secret is. */
export const seedFlakeSettingsSchema = z.strictObject({
  flake: z.string().superRefine((flake, ctx) => {
    try {
      parseFlakeRef(flake);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
    }
  }),
  repository: z.string().min(1, { error: 'names the repository whose pushes deploy the flake' }),
  branch: z.string().regex(BRANCH, { error: 'is not a valid git branch name' }).optional(),
  suspend: z.boolean().default(false),
  maxQueuedBuilds: z
    .int({ error: 'must be a whole number of builds' })
    .min(1, { error: 'must be at least 1' })
    .max(1000, { error: 'must be at most 1000' })
    .default(DEFAULT_MAX_QUEUED_BUILDS),
  forgeStatus: forgeStatusSchema.optional(),
  quota: flakeQuotaOverridesSchema.optional(),
  pollIntervalSeconds: z
    .int({ error: 'must be a whole number of seconds' })
    .min(0, { error: 'must be 0 (never) or more' })
    .max(86_400, { error: 'must be at most 86400 (a day)' })
    .optional(),
  forge: z.enum(FORGES).optional(),
});

export type SeedFlakeSettings = z.output<typeof seedFlakeSettingsSchema>;

/** A SeedFlake's spec: its settings, and the key of the webhook's Secret holding its secret. */
export const seedFlakeSpecSchema = seedFlakeSettingsSchema.extend({
  secretKey: z.string().regex(/^[-._a-zA-Z0-9]+$/, { error: 'expected a Secret key' }),
});
export type SeedFlakeSpec = z.output<typeof seedFlakeSpecSchema>;

/** kstatus condition types: Ready when what the spec asks runs; the others say why not. */
export const SEED_FLAKE_CONDITIONS = ['Ready', 'Reconciling', 'Stalled'] as const;
export type SeedFlakeConditionType = (typeof SEED_FLAKE_CONDITIONS)[number];

export interface SeedFlakeCondition {
  type: SeedFlakeConditionType;
  status: 'True' | 'False' | 'Unknown';
  /** CamelCase, for machines (`Applied`, `Building`, `NamespaceTaken`, `Suspended`). */
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface SeedFlakeInstanceStatus {
  name: string;
  state: 'Progressing' | 'Available' | 'Failed';
  readyReplicas?: number;
  message?: string;
}

/**
 * `seed rebuild`'s request: an annotation on the SeedFlake (so the API server
 * authenticates and authorizes it, and it waits there while no webhook runs). The webhook
 * queues the build and answers in `status.lastHandledRebuild` under the same id.
 */
export const REBUILD_ANNOTATION = 'seed.loom.farm/rebuild';

export const rebuildRequestSchema = z.strictObject({
  /** Chosen by the requester; a request whose id was answered is not taken again. */
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, {
    error: 'expected up to 40 lower-case letters, digits and dashes',
  }),
  /** The commit to build; the branch head when left out. */
  commit: z
    .string()
    .regex(/^[0-9a-f]{40}$/, { error: 'expected a 40-digit git commit id' })
    .optional(),
  /** Who asked, as the API server named them to the requester. */
  by: z.string().max(253).optional(),
});
export type RebuildRequest = z.infer<typeof rebuildRequestSchema>;

/** The webhook's answer to a rebuild request: the build it queued, or why none was. */
export interface RebuildAnswer {
  id: string;
  handledAt: string;
  commit?: string;
  jobId?: string;
  error?: string;
}

/**
 * Who deleted a SeedFlake, set by `seed remove` just before it deletes (a plain `kubectl
 * delete` leaves the deleter in the API server's audit log only).
 */
export const DELETED_BY_ANNOTATION = 'seed.loom.farm/deleted-by';

/** Status fields the webhook writes; the reconciler's status writes carry them over. */
export const WEBHOOK_STATUS_FIELDS = ['lastFetchedRevision', 'lastHandledRebuild'] as const;

export interface SeedFlakeStatus {
  observedGeneration?: number;
  namespace?: string;
  lastFetchedRevision?: string;
  lastHandledRebuild?: RebuildAnswer;
  lastAppliedRevision?: string;
  generation?: string;
  lastError?: string;
  instances?: SeedFlakeInstanceStatus[];
  conditions?: SeedFlakeCondition[];
}

/** A SeedFlake as the API server returns it (the fields Seed reads). */
export interface SeedFlakeResource {
  apiVersion: typeof SEED_FLAKE_API.apiVersion;
  kind: typeof SEED_FLAKE_API.kind;
  metadata: {
    name: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    finalizers?: string[];
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: SeedFlakeSpec;
  status?: SeedFlakeStatus;
}

/** Why a SeedFlake is not served, when another holds its namespace. */
export interface NamespaceTaken {
  namespace: string;
  /** The SeedFlake that holds it. */
  holder: string;
}

/**
 * Which SeedFlakes may use their namespace. A namespace keeps about 30 bits of the URI's
 * hash, so two flakes (or two SeedFlakes of one URI) can map to one: the oldest holds it
 * (then the first by name, so every reader decides alike) and the others are refused
 * until it goes. The webhook serves only holders; the reconciler marks the rest Stalled.
 */
export function namespaceHolders(
  flakes: readonly Pick<SeedFlakeResource, 'metadata' | 'spec'>[],
  namespaceOf: (flake: string) => string,
): Map<string, NamespaceTaken | undefined> {
  const ordered = [...flakes].sort(
    (a, b) =>
      (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  const holders = new Map<string, string>();
  const verdicts = new Map<string, NamespaceTaken | undefined>();
  for (const { metadata, spec } of ordered) {
    const namespace = namespaceOf(spec.flake);
    const holder = holders.get(namespace);
    if (holder === undefined) holders.set(namespace, metadata.name);
    verdicts.set(metadata.name, holder === undefined ? undefined : { namespace, holder });
  }
  return verdicts;
}
