// The reconciler against a real node (issue #13, items 6 and 8): a kubelet, the Deployment
// and ReplicaSet controllers, containerd with nix-snapshotter running `nix:0` images from
// this machine's nix store. The instances are busybox httpd serving a page that names
// their version; each test is a flake of its own (so a namespace of its own).
//
// The run's one local cluster is shared: `takeClusterTurn` waits for the other files on it
// (test/on-node/ is a jest project whose global set-up starts the cluster). Every wait
// below is bounded; none asserts a speed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig, Watch, type V1Pod } from '@kubernetes/client-node';
import { deriveNamespace, type InstanceStatus__Output, type SeedMeta } from '@seed/contracts';
import { readFileSync } from 'node:fs';
import {
  kubeRequest,
  reconcilerNetworkEnv,
  SEED_SECRETS_PROGRAM,
  takeClusterTurn,
  type ClusterTurn,
} from '@seed/testing';
import {
  Builder,
  Cluster,
  generation,
  meta,
  startReconciler,
  type RunningReconciler,
} from '../cluster';
import { nodeNix2container, shellImage } from './node-images';

// Another file may hold the shared cluster for a while.
const START_TIMEOUT_MS = 30 * 60_000;
const TEST_TIMEOUT_MS = 5 * 60_000;
/** Bound for a pod to be created, started and ready (image realised from the store). */
const ROLLOUT_BOUND_MS = 90_000;
const PORT = 8080;

let cluster: ClusterTurn;
let reconciler: RunningReconciler | undefined;
let builder: Builder;
let kube: Cluster;
let kubeconfig: KubeConfig;
/** Store paths of the images (the generation's `image`; the pod runs `nix:0<path>`). */
const images = {} as Record<'v1' | 'v2' | 'silent' | 'crash' | 'secretMissing', string>;

/** A secret's encrypted file that is not there (its store path never was). */
const MISSING_SECRET = `/nix/store/${'1'.repeat(32)}-db-password.enc.yaml`;

/**
 * What an instance whose secret is missing does as it boots, in busybox: the real
 * activation program (nix/secrets/seed-secrets.sh) with SEED_SECRETS_FAILURE as
 * nix/modules/secrets.nix sets it, then the script of that module's seed-secrets-failed
 * unit. This node runs the `kata` RuntimeClass with runc, so the pod has no TPM: a
 * stand-in tpm2_getcap lists the identity's handle, and the program goes on to the
 * secret's file.
 */
const secretMissingScript = [
  'mkdir -p /seed-bin /tmp',
  'for applet in $($BB --list); do $BB ln -s $BB /seed-bin/$applet; done',
  "printf '#!/seed-bin/sh\\necho - 0x81005EED\\n' > /seed-bin/tpm2_getcap",
  'chmod +x /seed-bin/tpm2_getcap',
  'export PATH=/seed-bin',
  `echo "db-password ${MISSING_SECRET} root root 0400" > /tmp/manifest`,
  'SEED_SECRETS_FAILURE=/run/seed/secrets-failed sh $WWW/seed-secrets install /tmp/manifest',
  'cat /run/seed/secrets-failed > /dev/termination-log || true',
  'exit 1',
].join('\n');

/**
 * httpd serving "version N" on PORT. The shell stays PID 1 with a TERM trap, so a pod
 * stops at once (busybox httpd as PID 1 ignores TERM: every stop would take the 30 s
 * grace period); it says its start line first, and httpd -v logs each request.
 */
const httpdScript = (version: string): string =>
  [
    `echo "httpd ${version} listening on :${PORT}"`,
    `trap 'kill $pid; exit 0' TERM`,
    `$BB httpd -f -v -p ${PORT} -h $WWW & pid=$!`,
    'wait',
  ].join('\n');

beforeAll(async () => {
  // The images first: building them needs no node, so the node's lock is held no longer.
  const nix2container = await nodeNix2container();
  images.v1 = await shellImage(nix2container, 'httpd-v1', httpdScript('v1'), {
    'index.html': 'version 1\n',
  });
  images.v2 = await shellImage(nix2container, 'httpd-v2', httpdScript('v2'), {
    'index.html': 'version 2\n',
  });
  // Runs, never listens: a rolling update to it never becomes ready.
  images.silent = await shellImage(
    nix2container,
    'silent',
    `echo "not listening"\ntrap 'exit 0' TERM\n$BB sleep 3600 & wait`,
  );
  images.crash = await shellImage(nix2container, 'crash', 'echo "crashing on purpose"; exit 1');
  images.secretMissing = await shellImage(nix2container, 'secret-missing', secretMissingScript, {
    'seed-secrets': readFileSync(SEED_SECRETS_PROGRAM, 'utf8'),
  });

  cluster = await takeClusterTurn();
  reconciler = await startReconciler(
    cluster.api.kubeconfigPath,
    reconcilerNetworkEnv(cluster.node),
  );
  builder = reconciler.builder;
  kube = new Cluster(cluster.api.kubeconfigPath);
  kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(cluster.api.kubeconfigPath);
}, START_TIMEOUT_MS);

afterAll(async () => {
  await reconciler?.stop();
  await cluster?.end();
}, 120_000);

const web = (rollout: SeedMeta['rollout']): SeedMeta =>
  meta('web', { rollout, expose: { http: { port: PORT, protocol: 'http' } } });

/** Applies one generation of `flake`: each meta with its image (a store path). */
async function apply(flake: string, instances: [SeedMeta, string][], revision: string) {
  const byName = Object.fromEntries(instances.map(([m, image]) => [m.name, image]));
  return builder.apply(
    generation(
      flake,
      instances.map(([m]) => m),
      revision.repeat(40).slice(0, 40),
      byName,
    ),
  );
}

/**
 * Ends a test's flake with a generation of no instances: its pods go, so the node's CPU
 * is free for the next test's (a failing pod keeps its requests while it crash-loops).
 */
async function release(flake: string): Promise<void> {
  await apply(flake, [], 'f');
  const ns = deriveNamespace(flake);
  await waitFor(`${flake}'s pods to go`, async () =>
    (await pods(ns)).length === 0 ? true : undefined,
  );
}

/** Polls `read` (every 250 ms, errors count as "not yet") until it returns a value. */
async function waitFor<T>(
  what: string,
  read: () => Promise<T | undefined>,
  timeoutMs = ROLLOUT_BOUND_MS,
  describeLast: () => Promise<string> = () => Promise.resolve(''),
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${await describeLast()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function instanceStatus(flake: string, name: string): Promise<InstanceStatus__Output> {
  const status = await builder.status(flake);
  const found = status.instances.find((i) => i.name === name);
  if (!found) throw new Error(`no instance ${name} in ${JSON.stringify(status)}`);
  return found;
}

/** Waits until the instance's status matches `want`; the last status is in the timeout. */
async function untilRollout(
  flake: string,
  name: string,
  want: (status: InstanceStatus__Output) => boolean,
  timeoutMs = ROLLOUT_BOUND_MS,
): Promise<InstanceStatus__Output> {
  let last: InstanceStatus__Output | undefined;
  return waitFor(
    `instance ${name} of ${flake} to match`,
    async () => {
      last = await instanceStatus(flake, name);
      return want(last) ? last : undefined;
    },
    timeoutMs,
    () => Promise.resolve(`; last status ${JSON.stringify(last)}`),
  );
}

const available = (s: InstanceStatus__Output) => s.rollout === 'available';

async function pods(namespace: string): Promise<V1Pod[]> {
  return (await kube.core.listNamespacedPod({ namespace })).items;
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** GET / of a pod, by its IP (the host routes to the pod network). */
async function page(pod: V1Pod): Promise<string> {
  const response = await fetch(`http://${pod.status!.podIP}:${PORT}/`, {
    signal: AbortSignal.timeout(2_000),
  });
  if (!response.ok) throw new Error(`${pod.metadata!.name}: HTTP ${response.status}`);
  return response.text();
}

/** The one Ready, not terminating pod of the namespace, once it serves `content`. */
async function servingPod(namespace: string, content: string, timeoutMs = ROLLOUT_BOUND_MS) {
  return waitFor(
    `a ready pod in ${namespace} serving ${JSON.stringify(content)}`,
    async () => {
      const ready = (await pods(namespace)).filter(
        (pod) => isReady(pod) && !pod.metadata?.deletionTimestamp,
      );
      if (ready.length !== 1) return undefined;
      return (await page(ready[0]!)) === content ? ready[0] : undefined;
    },
    timeoutMs,
    async () => `; pods ${JSON.stringify((await pods(namespace)).map(describePod))}`,
  );
}

/** Deletes `pod` and waits for another pod to serve version 1 in its place. */
async function replacePod(namespace: string, pod: V1Pod): Promise<V1Pod> {
  await kube.core.deleteNamespacedPod({ namespace, name: pod.metadata!.name! });
  return waitFor(`a pod in place of ${pod.metadata!.name} serving`, async () => {
    const next = await servingPod(namespace, 'version 1\n', 2_000);
    return next.metadata!.uid !== pod.metadata!.uid ? next : undefined;
  });
}

function describePod(pod: V1Pod) {
  return {
    name: pod.metadata?.name,
    phase: pod.status?.phase,
    ready: isReady(pod),
    deleting: Boolean(pod.metadata?.deletionTimestamp),
    containers: pod.status?.containerStatuses?.map((c) => c.state),
  };
}

/** One observation of a pod from a watch, in the order the API server sent them. */
interface PodEvent {
  type: string;
  pod: string;
  phase: string;
  ready: boolean;
  deleting: boolean;
  at: number;
}

/** Watches a namespace's pods, recording every event in order, until stopped. */
async function watchPods(namespace: string) {
  const events: PodEvent[] = [];
  const started = Date.now();
  const controller = await new Watch(kubeconfig).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (type: string, pod: V1Pod) =>
      events.push({
        type,
        pod: pod.metadata!.name!,
        phase: pod.status?.phase ?? '',
        ready: isReady(pod),
        deleting: Boolean(pod.metadata?.deletionTimestamp),
        at: Date.now() - started,
      }),
    () => undefined,
  );
  return {
    events,
    /** When the watch started: an event's `at` is milliseconds after it. */
    started,
    stop: () => controller.abort(),
    /** Index of the first event matching, or -1. */
    first: (match: (event: PodEvent) => boolean) => events.findIndex(match),
  };
}

/** The sequence, for a failed assertion's message and the test log. */
function sequence(events: PodEvent[]): string {
  return events
    .map(
      (e) =>
        `${String(e.at).padStart(6)} ms ${e.type.padEnd(8)} ${e.pod} ${e.phase}${e.ready ? ' Ready' : ''}${e.deleting ? ' deleting' : ''}`,
    )
    .join('\n');
}

describe('the reconciler on a real node', () => {
  it(
    'recreate: the old pod is terminated before the new pod is created',
    async () => {
      const flake = 'github:acme/real-recreate';
      const ns = deriveNamespace(flake);
      await apply(flake, [[web('recreate'), images.v1]], 'a');
      await untilRollout(flake, 'web', available);
      const old = await servingPod(ns, 'version 1\n');

      const watch = await watchPods(ns);
      const started = Date.now();
      await apply(flake, [[web('recreate'), images.v2]], 'b');
      await untilRollout(flake, 'web', available);
      const next = await servingPod(ns, 'version 2\n');
      const tookMs = Date.now() - started;
      watch.stop();

      const oldName = old.metadata!.name!;
      const newName = next.metadata!.name!;
      expect(newName).not.toBe(oldName);
      const log = sequence(watch.events);
      console.log(`recreate, v1 → v2 available in ${tookMs} ms:\n${log}`);
      const oldDeleting = watch.first((e) => e.pod === oldName && e.deleting);
      const oldTerminated = watch.first(
        (e) =>
          e.pod === oldName &&
          (e.type === 'DELETED' || e.phase === 'Succeeded' || e.phase === 'Failed'),
      );
      const newCreated = watch.first((e) => e.pod === newName);
      const newReady = watch.first((e) => e.pod === newName && e.ready);
      // Every one seen, and in this order: asked to stop, stopped, new pod, new pod ready.
      expect([oldDeleting, oldTerminated, newCreated, newReady].every((i) => i >= 0)).toBe(true);
      expect(oldDeleting).toBeLessThanOrEqual(oldTerminated);
      expect(oldTerminated).toBeLessThan(newCreated);
      expect(newCreated).toBeLessThan(newReady);
      // Never two pods of the instance running at once.
      const running = new Set<string>();
      for (const event of watch.events) {
        if (event.type !== 'DELETED' && event.phase === 'Running') running.add(event.pod);
        else running.delete(event.pod);
        expect(running.size).toBeLessThanOrEqual(1);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'rolling: the old pod serves until the new one is ready; a new version that never listens never replaces it',
    async () => {
      const flake = 'github:acme/real-rolling';
      const ns = deriveNamespace(flake);
      await apply(flake, [[web('rolling'), images.v1]], 'a');
      await untilRollout(flake, 'web', available);
      const old = await servingPod(ns, 'version 1\n');
      const oldName = old.metadata!.name!;

      const watch = await watchPods(ns);
      // Ask the old pod all along; only answers that came back before the new pod was seen
      // ready count: one still in flight then may be cut by the old pod's stop.
      const asks: { at: number; endedAt: number; ok: boolean; text: string }[] = [];
      let asking = true;
      const asker = (async () => {
        while (asking) {
          const at = Date.now();
          const text = await page(old).catch(
            (error: Error) =>
              `error: ${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ''}`,
          );
          asks.push({ at, endedAt: Date.now(), ok: text === 'version 1\n', text });
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
      const started = Date.now();
      await apply(flake, [[web('rolling'), images.v2]], 'b');
      let newReadyAt = 0;
      const next = await waitFor('a new pod, ready', async () => {
        const found = (await pods(ns)).find((p) => p.metadata!.name !== oldName && isReady(p));
        if (found) newReadyAt = Date.now();
        return found;
      });
      await untilRollout(flake, 'web', available);
      expect(await page(next)).toBe('version 2\n');
      const tookMs = Date.now() - started;
      asking = false;
      await asker;
      await waitFor('the old pod to go', async () =>
        (await pods(ns)).some((p) => p.metadata!.name === oldName) ? undefined : true,
      );
      watch.stop();

      const newName = next.metadata!.name!;
      const log = sequence(watch.events);
      console.log(`rolling, v1 → v2 available in ${tookMs} ms:\n${log}`);
      const newCreated = watch.first((e) => e.pod === newName);
      const newReady = watch.first((e) => e.pod === newName && e.ready);
      const oldLeaving = watch.first((e) => e.pod === oldName && (!e.ready || e.deleting));
      expect(newCreated).toBeGreaterThanOrEqual(0);
      expect(newReady).toBeGreaterThan(newCreated);
      // The old pod stayed Running and Ready until the new one was Ready...
      expect(oldLeaving).toBeGreaterThan(newReady);
      // ...and answered every request that came back before that, as the watch saw it
      // (polling for the new pod sees it ready a poll later, when the old one may be going).
      const newReadyAtWatched = watch.started + watch.events[newReady]!.at;
      const before = asks.filter((ask) => ask.endedAt < Math.min(newReadyAt, newReadyAtWatched));
      const cut = asks.filter((ask) => !ask.ok && !before.includes(ask));
      console.log(
        `rolling: ${before.length} answers before the new pod was ready; failed after: ${JSON.stringify(cut)}`,
      );
      expect(before.length).toBeGreaterThan(0);
      expect(before.filter((ask) => !ask.ok)).toEqual([]);

      // A version that runs but never listens: its pod never becomes ready, the old stays.
      await apply(flake, [[web('rolling'), images.silent]], 'c');
      const stuck = await waitFor('the silent version to run', async () =>
        (await pods(ns)).find(
          (p) =>
            p.metadata!.name !== newName &&
            p.status?.containerStatuses?.[0]?.state?.running !== undefined,
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 15_000));
      const status = await instanceStatus(flake, 'web');
      expect(status).toMatchObject({
        rollout: 'progressing',
        reason: 'NotReady',
        readyReplicas: 1,
      });
      expect(status.message).toContain(stuck.metadata!.name!);
      const now = await pods(ns);
      expect(now.find((p) => p.metadata!.name === stuck.metadata!.name)).toMatchObject({
        status: { phase: 'Running' },
      });
      expect(isReady(now.find((p) => p.metadata!.name === stuck.metadata!.name)!)).toBe(false);
      const serving = now.find((p) => p.metadata!.name === newName);
      expect(serving && isReady(serving) && !serving.metadata?.deletionTimestamp).toBe(true);
      expect(await page(serving!)).toBe('version 2\n');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'status from real pods: a missing image and a crash loop fail with their reasons, a good instance is available',
    async () => {
      const flake = 'github:acme/real-status';
      const missing = `/nix/store/${'0'.repeat(32)}-missing-image.tar`;
      await apply(
        flake,
        [
          [meta('missing'), missing],
          [meta('crash'), images.crash],
          [web('recreate'), images.v1],
        ],
        'a',
      );
      const good = await untilRollout(flake, 'web', available);
      expect(good).toEqual({
        name: 'web',
        rollout: 'available',
        reason: '',
        message: '',
        readyReplicas: 1,
      });
      const image = await untilRollout(flake, 'missing', (s) => s.rollout === 'failed');
      console.log(`missing image: ${JSON.stringify(image)}`);
      expect(image).toMatchObject({
        rollout: 'failed',
        reason: expect.stringMatching(/^(ErrImagePull|ImagePullBackOff)$/),
        message: expect.stringContaining(`image not found or not pullable: nix:0${missing}`),
      });
      const crash = await untilRollout(
        flake,
        'crash',
        (s) => s.rollout === 'failed' && s.reason === 'CrashLoopBackOff',
      );
      console.log(`crash loop: ${JSON.stringify(crash)}`);
      expect(crash.message).toMatch(
        /^crash loop: container crash restarted \d+ times?, last exit code 1 \(Error\) \(pod crash-/,
      );
      await release(flake);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "status from a real pod: a secret the activation could not install is named in the instance's failure",
    async () => {
      const flake = 'github:acme/real-secrets';
      await apply(flake, [[meta('vault'), images.secretMissing]], 'a');
      const failed = await untilRollout(
        flake,
        'vault',
        (s) => s.rollout === 'failed' && s.reason === 'CrashLoopBackOff',
      );
      console.log(`secret not installed: ${JSON.stringify(failed)}`);
      // What `seed status` prints in the instance's MESSAGE column (GetStatus).
      expect(failed.message).toMatch(
        new RegExp(
          `^crash loop: container vault restarted \\d+ times?, last exit code 1 \\(Error\\): seed-secrets: secret db-password: ${MISSING_SECRET} does not exist \\(pod vault-`,
        ),
      );
      await release(flake);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'drift: a deleted pod, a deleted Deployment, a restarted containerd and kubelet all come back serving',
    async () => {
      const flake = 'github:acme/real-drift';
      const ns = deriveNamespace(flake);
      await apply(flake, [[web('recreate'), images.v1]], 'a');
      await untilRollout(flake, 'web', available);
      const first = await servingPod(ns, 'version 1\n');
      const timings: Record<string, number> = {};
      /** Whether the pod that served before a part's restart still serves after it. */
      const survived: Record<string, boolean> = {};

      // A deleted pod: its ReplicaSet makes another.
      let started = Date.now();
      const second = await replacePod(ns, first);
      await untilRollout(flake, 'web', available);
      timings.podDeleted = Date.now() - started;

      // A deleted Deployment: the reconciler sees it go and creates it again.
      const deployment = (await kube.deployment(ns, 'web'))!;
      started = Date.now();
      await kube.apps.deleteNamespacedDeployment({
        namespace: ns,
        name: 'web',
        propagationPolicy: 'Foreground',
      });
      const recreated = await waitFor('the Deployment to be created again', async () => {
        const live = await kube.deployment(ns, 'web');
        return live && live.metadata!.uid !== deployment.metadata!.uid ? live : undefined;
      });
      expect(recreated.spec?.template.spec?.containers[0]?.image).toBe(`nix:0${images.v1}`);
      await untilRollout(flake, 'web', available);
      const third = await servingPod(ns, 'version 1\n');
      expect(third.metadata!.uid).not.toBe(second.metadata!.uid);
      timings.deploymentDeleted = Date.now() - started;

      // containerd, then the kubelet, killed and started again. The containers run on under
      // their shims, so the instance may never stop serving; that the parts work again
      // shows when the pod is deleted once more and a new one comes up.
      let serving = third;
      for (const part of ['containerd', 'kubelet'] as const) {
        started = Date.now();
        await cluster.node.restart(part);
        await untilRollout(flake, 'web', available);
        const after = await servingPod(ns, 'version 1\n');
        timings[`${part}Restarted`] = Date.now() - started;
        survived[part] = after.metadata!.uid === serving.metadata!.uid;
        started = Date.now();
        serving = await replacePod(ns, after);
        await untilRollout(flake, 'web', available);
        timings[`podDeletedAfter${part}Restart`] = Date.now() - started;
      }
      console.log(
        `drift, ms until available and serving again: ${JSON.stringify(timings)}; the same pod served on: ${JSON.stringify(survived)}`,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "logs: the pod's log, read through the API server, has the httpd's start line and its requests",
    async () => {
      const flake = 'github:acme/real-logs';
      const ns = deriveNamespace(flake);
      await apply(flake, [[web('recreate'), images.v1]], 'a');
      await untilRollout(flake, 'web', available);
      const pod = await servingPod(ns, 'version 1\n');
      const log = await waitFor('the log to show the request', async () => {
        const { status, body } = await kubeRequest(
          cluster.api,
          'GET',
          `/api/v1/namespaces/${ns}/pods/${pod.metadata!.name}/log?container=web`,
        );
        if (status !== 200) throw new Error(`${status} ${JSON.stringify(body)}`);
        return typeof body === 'string' && body.includes('response:200') ? body : undefined;
      });
      expect(log.split('\n')[0]).toBe(`httpd v1 listening on :${PORT}`);
    },
    TEST_TIMEOUT_MS,
  );
});
