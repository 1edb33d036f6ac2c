import { request } from 'node:http';

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * One GET on a connection of its own, bounded in time. Services are asked this way: a
 * pooled, kept-alive connection opened before kube-proxy routed a Service keeps its
 * conntrack entry and never reaches the pod (measured: a 404 for minutes while new
 * connections got the page).
 */
export function httpGetOnce(
  url: string,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent: false, signal: options.signal, timeout: options.timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`GET ${url}: no answer in ${options.timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.end();
  });
}
