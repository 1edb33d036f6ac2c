import { hash } from 'node:crypto';
import { BUILDS_QUEUE, flakeKey, type BuildJob, type Forge } from '@seed/contracts';

// Every Redis key of Seed's own around the builds queue (BullMQ keeps its jobs under its
// default prefix, `bull:builds:`). docs/contracts.md lists them with who writes them and
// when they expire. Nothing outside this package names them; `KEY_ACCESS` gives each
// service's Redis user exactly the keys below that it touches.

const DELIVERY = 'seed:webhook:delivery:';
const QUEUED = 'seed:builds:queued:';
const LATEST = 'seed:builds:latest:';
const RECORD = 'seed:build:';
const INDEX = 'seed:builds:index:';
const LOCK = 'seed:builds:lock:';
const WAITING = 'seed:builds:waiting:';
/** BullMQ's keys of the queue: its default prefix `bull`, then the queue's name. */
const BULLMQ = `bull:${BUILDS_QUEUE}:`;

/** Builds of every flake, newest push first, for an operator's overview. */
export const RECENT_BUILDS_KEY = 'seed:builds:recent';

/**
 * The keys each service may touch, as Redis ACL key patterns: `~` read and write, `%R~`
 * read only. The webhook never sees build records; the builder reads the latest build the
 * webhook recorded but cannot change it, nor the dedupe records.
 */
export const KEY_ACCESS = {
  webhook: [`~${BULLMQ}*`, `~${DELIVERY}*`, `~${QUEUED}*`, `~${LATEST}*`, `~${WAITING}*`],
  builder: [
    `~${BULLMQ}*`,
    `~${RECORD}*`,
    `~${INDEX}*`,
    `~${RECENT_BUILDS_KEY}`,
    `~${LOCK}*`,
    `~${WAITING}*`,
    `%R~${LATEST}*`,
  ],
} as const;

/** The job id of the flake's newest build: the webhook sets it, the builder reads it. */
export function latestBuildKey(flake: string): string {
  return `${LATEST}${flakeKey(flake)}`;
}

/**
 * Marks a flake's commit queued for the dedupe window, whatever became of its job; a
 * rebuild's mark is its own, so a commit queued before can be rebuilt.
 */
export function queuedKey(build: Pick<BuildJob, 'flake' | 'commit' | 'rebuild'>): string {
  const rebuild = build.rebuild === undefined ? '' : `:rebuild-${build.rebuild}`;
  return `${QUEUED}${flakeKey(build.flake)}:${build.commit}${rebuild}`;
}

/** The job ids a delivery queued. Ids are the sender's text: hashed, so no byte of theirs shapes a key. */
export function deliveryKey(forge: Forge, deliveryId: string): string {
  return `${DELIVERY}${forge}:${hash('sha256', deliveryId, 'hex').slice(0, 32)}`;
}

/** A build's record (JSON). */
export function buildRecordKey(id: string): string {
  return `${RECORD}${id}`;
}

/** The flake's job ids, scored by `receivedAt`. */
export function flakeBuildsKey(flake: string): string {
  return `${INDEX}${flakeKey(flake)}`;
}

/** The id of the job holding the flake's build lock. */
export function flakeLockKey(flake: string): string {
  return `${LOCK}${flakeKey(flake)}`;
}

/**
 * The flake's builds no worker has taken yet, scored by when they were queued: the webhook
 * adds each build it queues and counts them against the flake's cap; a worker removes a
 * build when it takes it.
 */
export function waitingBuildsKey(flake: string): string {
  return `${WAITING}${flakeKey(flake)}`;
}
