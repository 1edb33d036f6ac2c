// The few API calls a node's set-up makes, with the admin token (no client library: these
// packages start the cluster the services' clients are tested against).
import https from 'node:https';
import type { KubeApiServer } from '../kube-apiserver';

export interface KubeAnswer {
  status: number;
  body: unknown;
}

export function kubeRequest(
  api: Pick<KubeApiServer, 'url' | 'token' | 'caCert'>,
  method: string,
  requestPath: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<KubeAnswer> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      new URL(requestPath, api.url),
      {
        method,
        ca: api.caCert,
        // agent: false - no pooled socket survives into a restarted server.
        agent: false,
        timeout: 10_000,
        headers: {
          authorization: `Bearer ${api.token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': contentType }),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON (logs, errors from a proxy): keep the text
          }
          resolve({ status: response.statusCode ?? 0, body: parsed });
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error(`${method} ${requestPath}: timeout`)));
    request.on('error', reject);
    request.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Server-side apply of one cluster-scoped object into `collection` (its list URL). */
export async function kubeApply(
  api: Pick<KubeApiServer, 'url' | 'token' | 'caCert'>,
  collection: string,
  object: { metadata: { name: string } },
): Promise<void> {
  const { status, body } = await kubeRequest(
    api,
    'PATCH',
    `${collection}/${object.metadata.name}?fieldManager=seed-local-node&force=true`,
    object,
    'application/apply-patch+yaml',
  );
  if (status >= 300) {
    throw new Error(
      `applying ${collection}/${object.metadata.name}: ${status} ${JSON.stringify(body)}`,
    );
  }
}
