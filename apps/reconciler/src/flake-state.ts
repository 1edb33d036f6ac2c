import { flakeQuotaSchema } from '@seed/contracts';
import { ANNOTATION_FLAKE_URI } from '@seed/k8s-model';
import { z } from 'zod';

/** The generation a flake should run, as the builder handed it over. */
export const desiredSchema = z.object({
  flakeUri: z.string(),
  namespace: z.string(),
  revision: z.string(),
  generation: z.string(),
  instances: z.array(z.object({ name: z.string(), metaJson: z.string(), image: z.string() })),
  /** The flake's caps; absent in states written before caps existed: the defaults. */
  quota: flakeQuotaSchema.optional(),
});

export type DesiredGeneration = z.infer<typeof desiredSchema>;

export const appliedSchema = z.object({
  generation: z.string(),
  revision: z.string(),
  appliedAt: z.string(),
});

export type AppliedGeneration = z.infer<typeof appliedSchema>;

/** How many applied generations a flake keeps for rollbacks (the builder keeps as many). */
export const KEPT_GENERATIONS = 5;

/** An applied generation kept for a rollback: what it takes to apply it again. */
export const keptSchema = desiredSchema
  .pick({ revision: true, generation: true, instances: true, quota: true })
  .extend({ appliedAt: z.string() });

export type KeptGenerationState = z.infer<typeof keptSchema>;

/**
 * The flake was removed (its SeedFlake deleted): its instances go, its volumes stay.
 * Recorded in the state so a restarted or new leader finishes the removal, and so the
 * flake is not brought back from a copy of its state.
 */
export const removalSchema = z.object({
  requestedAt: z.string(),
  /** Who asked, as far as Seed knows. */
  by: z.string(),
});

export type FlakeRemoval = z.infer<typeof removalSchema>;

/**
 * What the reconciler knows of one flake. It lives in the cluster (a ConfigMap in the
 * flake's namespace), so a restarted reconciler picks up where it stopped.
 */
export interface FlakeState {
  /** The ConfigMap's, when it was read from the cluster: writes are guarded by it. */
  resourceVersion?: string;
  desired?: DesiredGeneration;
  applied?: AppliedGeneration;
  /** Empty when the last reconcile succeeded. */
  lastError: string;
  /** Set once the flake is removed; a new generation clears it. */
  removal?: FlakeRemoval;
  /** The last applied generations, newest first (the applied one included). */
  kept?: KeptGenerationState[];
}

/** `kept` with `desired` as just applied at `appliedAt` at its head, cut to KEPT_GENERATIONS. */
export function keepApplied(
  kept: readonly KeptGenerationState[],
  desired: DesiredGeneration,
  appliedAt: string,
): KeptGenerationState[] {
  const { revision, generation, instances, quota } = desired;
  return [
    { revision, generation, instances, ...(quota && { quota }), appliedAt },
    ...kept.filter((entry) => entry.generation !== generation),
  ].slice(0, KEPT_GENERATIONS);
}

export const STATE_CONFIG_MAP = 'seed-state';

/**
 * The flake a namespace records as its owner, when it is another than `flakeUri`: the
 * namespace name keeps only about 30 bits of the URI's hash, so two flakes can map to one
 * namespace, and the first one keeps it. Read from the Namespace's annotations and from
 * `seed-state`, so deleting either one does not hand the namespace over.
 */
export function foreignOwner(
  flakeUri: string,
  namespace: { metadata?: { annotations?: Record<string, string> } } | undefined,
  state: FlakeState | undefined,
): string | undefined {
  const recorded = [
    namespace?.metadata?.annotations?.[ANNOTATION_FLAKE_URI],
    state?.desired?.flakeUri,
  ];
  return recorded.find((owner) => owner !== undefined && owner !== flakeUri);
}
