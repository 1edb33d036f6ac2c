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
