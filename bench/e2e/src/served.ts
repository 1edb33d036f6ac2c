// When a Service first answers with given content, asked the way a new client would: a
// GET of its ClusterIP (kube-proxy's rules on this host) every POLL_MS, each on a new
// connection. A kept-alive connection would not do: one opened before kube-proxy wrote
// the Service's rules keeps its conntrack entry and never reaches a pod.
import { request } from 'node:http';
import { sleep } from './pod-timeline';

const POLL_MS = 50;
/** A request to a Service with no ready endpoint may hang until the connection times out. */
const REQUEST_TIMEOUT_MS = 1_000;

/**
 * Date.now() when a GET of `url` answered a body containing `marker`: the moment the
 * answer arrived (the request took at most REQUEST_TIMEOUT_MS, usually milliseconds).
 */
export async function servedAt(
  url: string,
  marker: string,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: string;
    try {
      const { status, body } = await get(url, signal);
      const at = Date.now();
      if (status === 200 && body.includes(marker)) return at;
      last = `${status}: ${body.trim().split('\n')[0] ?? ''}`;
    } catch (error) {
      signal.throwIfAborted();
      last = (error as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(`${url} did not serve "${marker}" within ${timeoutMs} ms (last: ${last})`);
    }
    await sleep(POLL_MS, signal);
  }
}

/** One GET on a connection of its own, bounded by REQUEST_TIMEOUT_MS. */
function get(url: string, signal: AbortSignal): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, signal, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}
