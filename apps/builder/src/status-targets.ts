import { readFileSync } from 'node:fs';
import { flakeRegistryEntries, forgeStatusSchema } from '@seed/contracts';
import { ConfigError } from '@seed/service-kit';
import { z } from 'zod';
import type { StatusTarget } from './forge-statuses';

// The builder reads the webhook's flake registry for one field only: where each flake's
// commit statuses go. The webhook validates every entry strictly at its start; here an
// entry is read loosely, and only `forgeStatus` (shared schema) and its token file are
// checked.
const entrySchema = z.object({
  flake: z.string().min(1),
  repository: z.string().min(1),
  forgeStatus: forgeStatusSchema.optional(),
});

/** Each flake's status target, from the registry document (YAML or JSON). */
export function statusTargets(document: string, origin: string): Map<string, StatusTarget> {
  const read = flakeRegistryEntries(document, origin);
  if ('problem' in read) throw new ConfigError([read.problem]);
  const problems: string[] = [];
  const targets = new Map<string, StatusTarget>();
  read.entries.forEach((candidate, index) => {
    const entry = entrySchema.safeParse(candidate);
    if (!entry.success) {
      for (const issue of entry.error.issues)
        problems.push(`${origin}: flakes[${index}].${issue.path.join('.')}: ${issue.message}`);
      return;
    }
    const { flake, repository, forgeStatus } = entry.data;
    if (forgeStatus === undefined) return;
    try {
      if (readFileSync(forgeStatus.tokenFile, 'utf8').trim() === '') throw new Error('it is empty');
    } catch (error) {
      problems.push(
        `${origin}: flakes[${index}].forgeStatus.tokenFile: cannot use ${forgeStatus.tokenFile}: ${(error as Error).message}`,
      );
      return;
    }
    targets.set(flake, {
      api: forgeStatus.api,
      repository: forgeStatus.repository ?? repositoryPath(repository),
      tokenFile: forgeStatus.tokenFile,
    });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return targets;
}

/** `owner/repo` of a registry repository: a URL, `host/owner/repo` or `owner/repo`. */
export function repositoryPath(repository: string): string {
  const path = repository
    .replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]+\//i, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
  const parts = path.split('/');
  return parts.length > 2 && parts[0]!.includes('.') ? parts.slice(1).join('/') : path;
}
