import { z } from 'zod';
import type { BuildJob } from './jobs';

/**
 * The builder's HTTP answers (`GET /builds/:id`, `GET /builds`): what a build is, where it
 * got and why it stopped. The builder stores and serves these; the operator CLI parses
 * them with the same schemas. Objects are not strict, so a builder that adds a field does
 * not break an older CLI.
 */

/**
 * Where a build is; `superseded` means a newer push of the flake replaced it,
 * `superseded-by-history` that the commit does not descend from the revision the flake
 * already runs (a replayed or late delivery), so deploying it would go backwards.
 */
const BUILD_STATES = [
  'queued',
  'evaluating',
  'building',
  'publishing',
  'applying',
  'succeeded',
  'failed',
  'superseded',
  'superseded-by-history',
] as const;
export type BuildState = (typeof BUILD_STATES)[number];

/** The states a build ends in: nothing more happens to it. */
export const FINAL_BUILD_STATES: ReadonlySet<BuildState> = new Set([
  'succeeded',
  'failed',
  'superseded',
  'superseded-by-history',
]);

const buildErrorSchema = z.object({
  kind: z.string(),
  message: z.string(),
  retryable: z.boolean(),
  location: z.string().optional(),
  derivation: z.string().optional(),
  logTail: z.array(z.string()).optional(),
});
export type BuildError = z.infer<typeof buildErrorSchema>;

/** `GET /builds/:id`: the build's job, its progress and its capped log. */
export const buildRecordSchema = z.object({
  id: z.string(),
  flake: z.string(),
  commit: z.string(),
  ref: z.string(),
  deliveryId: z.string(),
  receivedAt: z.string(),
  state: z.enum(BUILD_STATES),
  attempts: z.number(),
  updatedAt: z.string(),
  /** Milliseconds spent per phase (evaluate, build, publish, apply) in the last attempt. */
  phases: z.record(z.string(), z.number()),
  namespace: z.string().optional(),
  generation: z.string().optional(),
  instances: z.array(z.object({ name: z.string(), image: z.string() })).optional(),
  /** Whether the reconciler wrote anything for this generation. */
  changed: z.boolean().optional(),
  error: buildErrorSchema.optional(),
  /**
   * Why a `superseded-by-history` build was not deployed, naming the flake's applied
   * commit and the pushed one.
   */
  reason: z.string().optional(),
  log: z.array(z.string()),
});
export type BuildRecord = z.infer<typeof buildRecordSchema>;

/** One build of `GET /builds`: the record without its log. */
const buildSummarySchema = buildRecordSchema.omit({ log: true });
export type BuildSummary = z.infer<typeof buildSummarySchema>;

/** `GET /builds?flake=…&limit=…`: newest first. */
export const buildListSchema = z.object({ builds: z.array(buildSummarySchema) });
export type BuildList = z.infer<typeof buildListSchema>;

/** The record of a build no worker has started yet. */
export function queuedBuildRecord(id: string, job: BuildJob, now: Date): BuildRecord {
  return {
    id,
    flake: job.flake,
    commit: job.commit,
    ref: job.ref,
    deliveryId: job.deliveryId,
    receivedAt: job.receivedAt,
    state: 'queued',
    attempts: 0,
    updatedAt: now.toISOString(),
    phases: {},
    log: [],
  };
}
