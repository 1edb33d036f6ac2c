import { randomUUID } from 'node:crypto';
import { githubPushHeaders } from '@seed/local-parts';
import { z } from 'zod';

export interface PushEvent {
  /** `owner/repo`, as the webhook's flake registry names it. */
  repository: string;
  branch: string;
  before: string;
  after: string;
}

const acceptedSchema = z.object({
  status: z.string(),
  deliveryId: z.string(),
  jobs: z.array(z.object({ jobId: z.string() })),
});

/**
 * Delivers a push the way GitHub does (event header, delivery id, HMAC-SHA256 of the raw
 * body) and returns the ids of the builds the webhook queued.
 */
export async function deliverGithubPush(
  webhookUrl: string,
  secret: string,
  push: PushEvent,
  signal: AbortSignal,
): Promise<{ deliveryId: string; jobIds: string[] }> {
  const body = JSON.stringify({
    ref: `refs/heads/${push.branch}`,
    before: push.before,
    after: push.after,
    created: false,
    deleted: false,
    repository: {
      full_name: push.repository,
      name: push.repository.split('/').pop(),
      default_branch: push.branch,
    },
    pusher: { name: 'seed-up' },
  });
  const deliveryId = randomUUID();
  const response = await fetch(`${webhookUrl}/webhook`, {
    method: 'POST',
    headers: githubPushHeaders(body, secret, deliveryId),
    body,
    signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]),
  });
  const answer: unknown = await response.json().catch(() => undefined);
  if (response.status !== 202) {
    throw new Error(`the webhook answered ${response.status}: ${JSON.stringify(answer)}`);
  }
  const accepted = acceptedSchema.safeParse(answer);
  if (!accepted.success || accepted.data.jobs.length === 0) {
    throw new Error(`the webhook queued no build: ${JSON.stringify(answer)}`);
  }
  return { deliveryId, jobIds: accepted.data.jobs.map((job) => job.jobId) };
}

/** Sends GitHub's ping to one flake's own delivery URL; the HTTP status it gets. */
export async function pingHook(
  webhookUrl: string,
  hookId: string,
  secret: string,
  signal: AbortSignal,
): Promise<number> {
  const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
  const response = await fetch(`${webhookUrl}/hooks/${hookId}`, {
    method: 'POST',
    headers: { ...githubPushHeaders(body, secret, randomUUID()), 'x-github-event': 'ping' },
    body,
    signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]),
  });
  await response.body?.cancel();
  return response.status;
}
