import { createHmac } from 'node:crypto';

/** The headers GitHub sends with a push delivery, signed with the webhook's secret. */
export function githubPushHeaders(
  body: string,
  secret: string,
  deliveryId: string,
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-github-event': 'push',
    'x-github-delivery': deliveryId,
    'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
  };
}
