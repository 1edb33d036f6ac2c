import { z } from 'zod';
import type { Forge } from './jobs';

/**
 * Commit statuses Seed sets on the forge a build came from: the registry field that says
 * where and with which token, and the one request each forge's API takes. The builder
 * sends them; the webhook validates the field with the rest of the registry.
 *
 *   GitHub         POST {api}/repos/{owner}/{repo}/statuses/{sha}        (REST "repos/create-commit-status")
 *   Gitea/Forgejo  POST {api}/api/v1/repos/{owner}/{repo}/statuses/{sha}  (Swagger "repoCreateStatus")
 *   GitLab         POST {api}/api/v4/projects/{id}/statuses/{sha}         ("Set the pipeline status of a commit")
 */

/** A registry entry's `forgeStatus`: where the flake's repository's forge API is, and the token. */
export const forgeStatusSchema = z.strictObject({
  /** The API's base: `https://api.github.com`, `https://gitea.example`, `https://gitlab.example`. */
  api: z
    .url({ protocol: /^https?$/, error: 'expected the http(s) URL of the forge API' })
    .refine((url) => new URL(url).username === '' && new URL(url).password === '', {
      error: 'must not carry credentials: give them in tokenFile',
    })
    .transform((url) => url.replace(/\/+$/, '')),
  /** A file holding the API token (a mounted Secret), read at each status. */
  tokenFile: z.string().startsWith('/', { error: 'expected an absolute path' }),
  /**
   * `owner/repo` (GitLab: the project's path, `group/sub/project`, or its numeric id);
   * the registry entry's repository without its host when left out.
   */
  repository: z
    .string()
    .regex(/^([\w.-]+(\/[\w.-]+)+|\d+)$/, { error: 'expected owner/repo or a GitLab project id' })
    .optional(),
});
export type ForgeStatusTarget = z.infer<typeof forgeStatusSchema>;

/**
 * Where one flake's statuses go, resolved: the build job carries it from the webhook,
 * which reads the flake's `forgeStatus`, to the builder, which sends them.
 */
export const statusTargetSchema = z.strictObject({
  api: z.url({ protocol: /^https?$/ }),
  /** `owner/repo`, or a GitLab project path or id. */
  repository: z.string().min(1),
  tokenFile: z.string().startsWith('/'),
});
export type StatusTarget = z.infer<typeof statusTargetSchema>;

/** The status target of a flake whose repository is `repository` (as its spec names it). */
export function statusTargetOf(forgeStatus: ForgeStatusTarget, repository: string): StatusTarget {
  return {
    api: forgeStatus.api,
    repository: forgeStatus.repository ?? repositoryPath(repository),
    tokenFile: forgeStatus.tokenFile,
  };
}

/** `owner/repo` of a spec's repository: a URL, `host/owner/repo` or `owner/repo`. */
export function repositoryPath(repository: string): string {
  const path = repository
    .replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]+\//i, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
  const parts = path.split('/');
  return parts.length > 2 && parts[0]!.includes('.') ? parts.slice(1).join('/') : path;
}

/** What Seed reports of a build. */
export const COMMIT_STATUS_EVENTS = [
  'queued',
  'building',
  'succeeded',
  'failed',
  'superseded',
] as const;
export type CommitStatusEvent = (typeof COMMIT_STATUS_EVENTS)[number];

/** Each forge's word for each event (their state enums differ). */
const STATES: Record<'github' | 'gitea' | 'gitlab', Record<CommitStatusEvent, string>> = {
  github: {
    queued: 'pending',
    building: 'pending',
    succeeded: 'success',
    failed: 'failure',
    superseded: 'error',
  },
  gitea: {
    queued: 'pending',
    building: 'pending',
    succeeded: 'success',
    failed: 'failure',
    superseded: 'warning',
  },
  gitlab: {
    queued: 'pending',
    building: 'running',
    succeeded: 'success',
    failed: 'failed',
    superseded: 'canceled',
  },
};

/** The name the status carries on the forge, so a push shows one line for Seed. */
export const COMMIT_STATUS_CONTEXT = 'seed';

export interface CommitStatus {
  event: CommitStatusEvent;
  /** A line for people; forges cut it at 140 characters (GitHub's limit), so Seed does. */
  description: string;
  /** Where the build's record is. */
  targetUrl: string;
}

export interface ForgeRequest {
  url: string;
  headers: Record<string, string>;
  body: Record<string, string>;
}

/** The POST that sets `status` on commit `sha` of `repository` at `forge`. */
export function commitStatusRequest(
  forge: Forge,
  api: string,
  repository: string,
  sha: string,
  status: CommitStatus,
  token: string,
): ForgeRequest {
  const description = status.description.slice(0, 140);
  const json = { 'content-type': 'application/json', 'user-agent': 'seed-builder' };
  if (forge === 'gitlab') {
    return {
      url: `${api}/api/v4/projects/${encodeURIComponent(repository)}/statuses/${sha}`,
      headers: { ...json, 'private-token': token },
      body: {
        state: STATES.gitlab[status.event],
        name: COMMIT_STATUS_CONTEXT,
        target_url: status.targetUrl,
        description,
      },
    };
  }
  const body = {
    state: STATES[forge === 'github' ? 'github' : 'gitea'][status.event],
    context: COMMIT_STATUS_CONTEXT,
    target_url: status.targetUrl,
    description,
  };
  const path = repository.split('/').map(encodeURIComponent).join('/');
  if (forge === 'github') {
    return {
      url: `${api}/repos/${path}/statuses/${sha}`,
      headers: {
        ...json,
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        authorization: `Bearer ${token}`,
      },
      body,
    };
  }
  return {
    url: `${api}/api/v1/repos/${path}/statuses/${sha}`,
    headers: { ...json, accept: 'application/json', authorization: `token ${token}` },
    body,
  };
}
