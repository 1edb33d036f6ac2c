import type { BuildRecord, BuildSummary } from '@seed/contracts';

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
export function summarize(record: BuildRecord): BuildSummary {
  const { log: _log, ...summary } = record;
  return summary;
}
