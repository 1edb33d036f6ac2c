import type { BuildJob } from '@seed/contracts';

/** Where a build is; `superseded` means a newer push of the flake replaced it. */
export type BuildState =
  | 'queued'
  | 'evaluating'
  | 'building'
  | 'publishing'
  | 'applying'
  | 'succeeded'
  | 'failed'
  | 'superseded';

export const FINAL_STATES: ReadonlySet<BuildState> = new Set(['succeeded', 'failed', 'superseded']);

export interface BuildError {
  kind: string;
  message: string;
  retryable: boolean;
  location?: string;
  derivation?: string;
  logTail?: string[];
}

/** What `GET /builds/:id` shows: the build's job, its progress and its capped log. */
export interface BuildRecord {
  id: string;
  flake: string;
  commit: string;
  ref: string;
  deliveryId: string;
  receivedAt: string;
  state: BuildState;
  attempts: number;
  updatedAt: string;
  /** Milliseconds spent per phase (evaluate, build, publish, apply) in the last attempt. */
  phases: Record<string, number>;
  namespace?: string;
  generation?: string;
  instances?: { name: string; image: string }[];
  /** Whether the reconciler wrote anything for this generation. */
  changed?: boolean;
  error?: BuildError;
  log: string[];
}

export function newRecord(id: string, job: BuildJob, now: Date): BuildRecord {
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

/**
 * Appends log lines, dropping the oldest once the log is over `maxBytes`: the end of a
 * build's log is what says why it failed.
 */
export function appendLog(record: BuildRecord, lines: string[], maxBytes: number, now: Date): void {
  const stamp = now.toISOString();
  record.log.push(...lines.map((line) => `${stamp} ${line}`));
  let size = record.log.reduce((total, line) => total + Buffer.byteLength(line) + 1, 0);
  while (size > maxBytes && record.log.length > 1) {
    size -= Buffer.byteLength(record.log.shift()!) + 1;
  }
}

/** The list view of a build: everything but the log. */
export function summarize(record: BuildRecord): Omit<BuildRecord, 'log'> {
  const { log: _log, ...summary } = record;
  return summary;
}
