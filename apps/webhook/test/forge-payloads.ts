// Deliveries as the forges send them: GitHub's from the published
// @octokit/webhooks-examples, Gitea/Forgejo and GitLab written from their documented formats.
import { createHmac } from 'node:crypto';
import examples from '@octokit/webhooks-examples/api.github.com/index.json';

type Payload = Record<string, unknown>;

function githubExample(event: string, match: (payload: Payload) => boolean): Payload {
  const entry = (examples as unknown as { name: string; examples: Payload[] }[]).find(
    (e) => e.name === event,
  );
  const payload = entry?.examples.find(match);
  if (!payload) throw new Error(`no ${event} example matches`);
  return structuredClone(payload);
}

/** The example branch push to Codertocat/Hello-World (default branch master). */
export function githubPush(commit: string, ref = 'refs/heads/master'): Payload {
  const payload = githubExample(
    'push',
    (p) => p.ref === 'refs/heads/master' && p.deleted === false,
  );
  return { ...payload, ref, after: commit };
}

export function githubTagPush(): Payload {
  return githubExample(
    'push',
    (p) => String(p.ref).startsWith('refs/tags/') && p.deleted === false,
  );
}

export function githubBranchDeletion(): Payload {
  const payload = githubPush('0'.repeat(40));
  return { ...payload, deleted: true, created: false };
}

export function githubPing(): Payload {
  return githubExample('ping', (p) => p.repository !== undefined);
}

export function githubIssue(): Payload {
  return githubExample('issues', () => true);
}

export function hmacHex(secret: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** Gitea / Forgejo push: GitHub-like, with the repository's clone URLs. */
export function giteaPush(
  host: string,
  fullName: string,
  commit: string,
  branch = 'main',
): Payload {
  return {
    ref: `refs/heads/${branch}`,
    before: '1'.repeat(40),
    after: commit,
    compare_url: `https://${host}/${fullName}/compare/111...${commit}`,
    commits: [
      { id: commit, message: 'update\n', url: `https://${host}/${fullName}/commit/${commit}` },
    ],
    total_commits: 1,
    head_commit: { id: commit, message: 'update\n' },
    repository: {
      id: 1,
      name: fullName.split('/')[1],
      full_name: fullName,
      html_url: `https://${host}/${fullName}`,
      clone_url: `https://${host}/${fullName}.git`,
      ssh_url: `git@${host}:${fullName}.git`,
      default_branch: 'main',
    },
    pusher: { login: 'dev' },
    sender: { login: 'dev' },
  };
}

/** GitLab Push Hook (and Tag Push Hook with `tag: true`). */
export function gitlabPush(
  host: string,
  path: string,
  commit: string,
  options: { tag?: boolean } = {},
): Payload {
  return {
    object_kind: options.tag ? 'tag_push' : 'push',
    event_name: options.tag ? 'tag_push' : 'push',
    before: '1'.repeat(40),
    after: commit,
    ref: options.tag ? 'refs/tags/v1.0.0' : 'refs/heads/main',
    checkout_sha: commit,
    user_username: 'dev',
    project_id: 15,
    project: {
      id: 15,
      name: path.split('/').at(-1),
      web_url: `https://${host}/${path}`,
      git_ssh_url: `git@${host}:${path}.git`,
      git_http_url: `https://${host}/${path}.git`,
      namespace: path.split('/')[0],
      path_with_namespace: path,
      default_branch: 'main',
    },
    commits: [{ id: commit, message: 'update' }],
    total_commits_count: 1,
    repository: {
      name: path.split('/').at(-1),
      url: `git@${host}:${path}.git`,
      homepage: `https://${host}/${path}`,
    },
  };
}
