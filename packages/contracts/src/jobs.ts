import { hash } from 'node:crypto';
import { z } from 'zod';
import { statusTargetSchema } from './forge-status';
import { flakeQuotaSchema } from './quota';

/**
 * The build job catalog: the one definition of what the webhook puts on the builds queue
 * and the builder takes off it. Producer and consumer both import it, so the payload,
 * the job id scheme and the retry policy cannot drift apart.
 */

export const BUILDS_QUEUE = 'builds';
export const BUILD_JOB_NAME = 'build';

export const FORGES = ['github', 'gitea', 'forgejo', 'gitlab'] as const;
export type Forge = (typeof FORGES)[number];

export const buildJobSchema = z.strictObject({
  /** The flake URI as registered; the builder pins it to `commit`. */
  flake: z.string().min(1),
  /** The pushed commit (`after`). */
  commit: z.string().regex(/^[0-9a-f]{40}$/, { error: 'expected a 40-digit git commit id' }),
  /** The pushed ref, `refs/heads/<branch>`. */
  ref: z.string().startsWith('refs/heads/', { error: 'expected a branch ref (refs/heads/...)' }),
  forge: z.enum(FORGES),
  deliveryId: z.string().min(1),
  /** When the webhook accepted the delivery (ISO 8601), for queue-wait metrics. */
  receivedAt: z.iso.datetime(),
  /**
   * The flake's caps from the registry, defaults filled in. Absent on jobs queued by a
   * webhook older than the caps: the reconciler then applies the defaults.
   */
  quota: flakeQuotaSchema.optional(),
  /** Where the builder sets the commit's statuses: the flake's `forgeStatus`, when it has one. */
  forgeStatus: statusTargetSchema.optional(),
  /**
   * The forge said the push rewrote the branch (GitHub, Gitea, Forgejo `forced`; GitLab
   * says nothing, so its pushes are never marked). The builder then deploys the commit
   * even when it does not descend from the flake's applied revision (without it, only
   * when the branch no longer holds that revision).
   */
  forced: z.boolean().optional(),
  /**
   * An operator asked for this commit to be deployed whatever the applied revision: a
   * rollback to an older commit. Never set from a forge's payload.
   */
  allowBackward: z.boolean().optional(),
  /**
   * The id of the operator's rebuild request that queued it (`seed rebuild`): its own job
   * id, so a commit built before is built again.
   */
  rebuild: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,39}$/)
    .optional(),
});

export type BuildJob = z.infer<typeof buildJobSchema>;

/** A short, stable handle of a flake URI for Redis keys and job ids. */
export function flakeKey(flake: string): string {
  return hash('sha256', flake, 'hex').slice(0, 16);
}

/**
 * The job id of a build: one per flake and commit, so a redelivery or a second hook for
 * the same commit finds the job already there; an operator's rebuild adds its request id.
 * (BullMQ ids may not contain ':'.)
 */
export function buildJobId(flake: string, commit: string, rebuild?: string): string {
  return `build-${flakeKey(flake)}-${commit}${rebuild === undefined ? '' : `-rebuild-${rebuild}`}`;
}

/**
 * Retry policy of build jobs: transient failures (fetch errors, an unavailable
 * reconciler) retry with exponential backoff; the builder marks permanent ones
 * unrecoverable. Finished jobs are kept a while for `GET /builds` and then trimmed.
 */
export const BUILD_JOB_OPTIONS = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 5_000 },
  removeOnComplete: { age: 7 * 24 * 3600, count: 5_000 },
  removeOnFail: { age: 30 * 24 * 3600, count: 5_000 },
} as const;

/** The options a build is added with: the retry policy, under its flake-and-commit job id. */
export function buildJobOptions(build: Pick<BuildJob, 'flake' | 'commit' | 'rebuild'>) {
  return { ...BUILD_JOB_OPTIONS, jobId: buildJobId(build.flake, build.commit, build.rebuild) };
}
