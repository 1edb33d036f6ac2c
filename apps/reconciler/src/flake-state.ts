import { z } from 'zod';

/** The generation a flake should run, as the builder handed it over. */
export const desiredSchema = z.object({
  flakeUri: z.string(),
  namespace: z.string(),
  revision: z.string(),
  generation: z.string(),
  instances: z.array(z.object({ name: z.string(), metaJson: z.string(), image: z.string() })),
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
  desired?: DesiredGeneration;
  applied?: AppliedGeneration;
  /** Empty when the last reconcile succeeded. */
  lastError: string;
}

export const STATE_CONFIG_MAP = 'seed-state';
