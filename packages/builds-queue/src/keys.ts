import { hash } from 'node:crypto';
import { flakeKey, type BuildJob, type Forge } from '@seed/contracts';

// Every Redis key of Seed's own around the builds queue (BullMQ keeps its jobs under its
// default prefix, `bull:builds:`). docs/contracts.md lists them with who writes them and
// when they expire. Nothing outside this package names them.

/** Builds of every flake, newest push first, for an operator's overview. */
export const RECENT_BUILDS_KEY = 'seed:builds:recent';

/** The job id of the flake's newest build: the webhook sets it, the builder reads it. */
export function latestBuildKey(flake: string): string {
  return `seed:builds:latest:${flakeKey(flake)}`;
}

/** Marks a flake's commit queued for the dedupe window, whatever became of its job. */
export function queuedKey(build: Pick<BuildJob, 'flake' | 'commit'>): string {
  return `seed:builds:queued:${flakeKey(build.flake)}:${build.commit}`;
}

/** The job ids a delivery queued. Ids are the sender's text: hashed, so no byte of theirs shapes a key. */
export function deliveryKey(forge: Forge, deliveryId: string): string {
  return `seed:webhook:delivery:${forge}:${hash('sha256', deliveryId, 'hex').slice(0, 32)}`;
}

/** A build's record (JSON). */
export function buildRecordKey(id: string): string {
  return `seed:build:${id}`;
}

/** The flake's job ids, scored by `receivedAt`. */
export function flakeBuildsKey(flake: string): string {
  return `seed:builds:index:${flakeKey(flake)}`;
}

/** The id of the job holding the flake's build lock. */
export function flakeLockKey(flake: string): string {
  return `seed:builds:lock:${flakeKey(flake)}`;
}
