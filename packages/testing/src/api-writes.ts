import { kubeRequest, type KubeApiServer } from '@seed/local-parts';

/** Verbs of `apiserver_request_total` that change stored objects (APPLY is server-side apply). */
const WRITE_VERBS = new Set(['APPLY', 'PATCH', 'POST', 'PUT', 'DELETE', 'DELETECOLLECTION']);

/**
 * The resources Seed writes. The API server also writes on its own every few seconds (its
 * identity lease, the `kubernetes` Service's endpoints); those are left out so a count
 * taken around a call is that call's.
 */
const SEED_RESOURCES = new Set([
  'namespaces',
  'configmaps',
  'persistentvolumeclaims',
  'deployments',
  'services',
  'networkpolicies',
  'resourcequotas',
  'limitranges',
  'events',
]);

/**
 * Write requests the API server has served, by verb and resource (`APPLY configmaps`,
 * `POST events`), as its own /metrics counts them.
 */
export type WriteCounts = Map<string, number>;

/**
 * The API server's count of write requests to Seed's resources so far. Taken before and
 * after something (`writesBetween`), it is the number of writes that thing sent, counted
 * by the server rather than by the client that might forget one.
 */
export async function apiWrites(
  api: Pick<KubeApiServer, 'url' | 'token' | 'caCert'>,
): Promise<WriteCounts> {
  const { status, body } = await kubeRequest(api, 'GET', '/metrics');
  if (status !== 200 || typeof body !== 'string') throw new Error(`GET /metrics: ${status}`);
  const counts: WriteCounts = new Map();
  for (const line of body.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = new Map<string, string>(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1] ?? '', match[2] ?? '']),
    );
    const [verb, resource] = [labels.get('verb') ?? '', labels.get('resource') ?? ''];
    if (!WRITE_VERBS.has(verb) || !SEED_RESOURCES.has(resource)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    const key = `${verb} ${resource}`;
    counts.set(key, (counts.get(key) ?? 0) + value);
  }
  return counts;
}

/** Writes per verb and resource from one count to a later one, those without any left out. */
export function writesBetween(before: WriteCounts, after: WriteCounts): WriteCounts {
  const between: WriteCounts = new Map();
  for (const [resource, count] of after) {
    const written = count - (before.get(resource) ?? 0);
    if (written > 0) between.set(resource, written);
  }
  return between;
}

/** The Event writes of a count apart from the others (Events are sent in the background). */
export function splitEvents(counts: WriteCounts): { objects: WriteCounts; events: number } {
  const objects: WriteCounts = new Map();
  let events = 0;
  for (const [key, count] of counts) {
    if (key.endsWith(' events')) events += count;
    else objects.set(key, count);
  }
  return { objects, events };
}
