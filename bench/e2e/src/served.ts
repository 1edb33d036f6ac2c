// When a Service first answers with given content, asked the way a client would: a GET of
// its ClusterIP (kube-proxy's rules on this host) every POLL_MS.
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
  let last: string;
  for (;;) {
    try {
      const response = await fetch(url, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
      const body = await response.text();
      const at = Date.now();
      if (response.ok && body.includes(marker)) return at;
      last = `${response.status}: ${body.trim().split('\n')[0] ?? ''}`;
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
