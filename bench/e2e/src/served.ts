// When a Service first answers with given content, asked the way a new client would: a
// GET of its ClusterIP (kube-proxy's rules on this host) every POLL_MS, each on a new
// connection. A kept-alive connection would not do: one opened before kube-proxy wrote
// the Service's rules keeps its conntrack entry and never reaches a pod.
import { httpGetOnce } from '@seed/local-parts';
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
      const { status, body } = await httpGetOnce(url, { timeoutMs: REQUEST_TIMEOUT_MS, signal });
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
