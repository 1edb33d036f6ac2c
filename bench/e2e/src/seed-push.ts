// One timed push through Seed: a commit that changes what `web` serves, delivered as a
// signed GitHub push, followed through its build record to the node and to web's Service.
import { deliverGithubPush, type RunningStack } from '@seed/dev-stack';
import type { BuilderApi } from '@seed/platform-client';
import type { BuildRecord } from '@seed/contracts';
import type { FlakeRepo } from '@seed/local-parts';
import type { PodTimeline } from './pod-timeline';
import { sleep } from './pod-timeline';
import { evaluateByHand } from './nix-by-hand';
import { servedAt } from './served';

/** The example's web page program, in the flake repository `seed up` pushed. */
export const WEB_CGI = 'servers/web.cgi';
/** The line of web.cgi the bench's line goes after. */
const ANCHOR = /^echo "hello from .*$/m;
const BUILD_POLL_MS = 50;

/** Milliseconds of each step of one push, from the delivery to the new content served. */
export interface PushTimes {
  /** The webhook's answer to the signed delivery (HTTP round trip). */
  webhook: number;
  /** The webhook's receipt of the delivery to a worker starting the build (`evaluating`). */
  queue: number;
  /** The build record's phases. */
  evaluate: number;
  build: number;
  publish: number;
  apply: number;
  /** The same nix commands as the evaluate phase, run by hand after the push (nix-by-hand.ts). */
  evaluateByHand: number;
  /** The builder's own time between its phases: from `evaluating` to `succeeded`, less them. */
  bookkeeping: number;
  /** Apply done (`succeeded`) to the new pod's container running, seen by a watch. */
  podStart: number;
  /** Container running to the Ready condition. */
  ready: number;
  /** Ready to web's Service answering with the new content. */
  served: number;
  /** Delivery sent to new content served. */
  total: number;
}

/** What the builder's evaluate phase adds to the nix commands it runs (noise may make it < 0). */
export function evaluationOverhead(times: PushTimes): number {
  return times.evaluate - times.evaluateByHand;
}

/** The phases that are Seed's own, not nix's and not Kubernetes'. */
export function seedOwn(times: PushTimes): number {
  return (
    times.webhook +
    times.queue +
    Math.max(0, evaluationOverhead(times)) +
    times.publish +
    times.apply +
    times.bookkeeping
  );
}

export interface PushTarget {
  stack: RunningStack;
  repo: FlakeRepo;
  builds: BuilderApi;
  webPods: PodTimeline;
  /** `http://<web's ClusterIP>:8080/`. */
  webUrl: string;
  signal: AbortSignal;
  timeoutMs: number;
}

/** web.cgi with one more line, `echo "<marker>"`, after its greeting. */
export function withMarker(cgi: string, marker: string): string {
  if (!ANCHOR.test(cgi)) throw new Error(`${WEB_CGI} no longer has a line ${String(ANCHOR)}`);
  return cgi.replace(ANCHOR, (line) => `${line}\necho "${marker}"`);
}

/**
 * Commits `cgi` as web's page program, delivers the push and times it until web's
 * Service serves `marker`. The commit happens before the clock starts: a tenant's
 * `git push` is not Seed's time.
 */
export async function timedPush(target: PushTarget, cgi: string, marker: string) {
  const { stack, repo, signal, timeoutMs } = target;
  const before = await repo.head();
  const after = await repo.commit({ [WEB_CGI]: cgi }, `web: ${marker}`);
  const knownPods = target.webPods.uids();

  const sentAt = Date.now();
  const delivery = await deliverGithubPush(
    stack.webhookUrl,
    stack.delivery.secret,
    { repository: stack.delivery.repository, branch: stack.delivery.branch, before, after },
    signal,
  );
  const answeredAt = Date.now();
  const jobId = delivery.jobIds[0]!;
  const build = await finishedBuild(target.builds, jobId, signal, timeoutMs);
  const stamps = stateStamps(build);
  const pod = await target.webPods.newReadyPod(knownPods, signal, timeoutMs);
  const served = await servedAt(target.webUrl, marker, signal, timeoutMs);
  // Outside the timed path: nothing of this push is running any more.
  const evaluateByHandMs = await evaluateByHand(stack, after);

  const phase = (name: string) => build.phases[name] ?? 0;
  const phases = phase('evaluate') + phase('build') + phase('publish') + phase('apply');
  const times: PushTimes = {
    webhook: answeredAt - sentAt,
    queue: stamps.evaluating - Date.parse(build.receivedAt),
    evaluate: phase('evaluate'),
    evaluateByHand: evaluateByHandMs,
    build: phase('build'),
    publish: phase('publish'),
    apply: phase('apply'),
    bookkeeping: stamps.succeeded - stamps.evaluating - phases,
    podStart: pod.runningAt - stamps.succeeded,
    ready: pod.readyAt - pod.runningAt,
    served: served - pod.readyAt,
    total: served - sentAt,
  };
  return { commit: after, jobId, generation: build.generation ?? '', pod: pod.name, times };
}

/** Polls the build record until the build ends; anything but one successful attempt throws. */
async function finishedBuild(
  builds: BuilderApi,
  jobId: string,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<BuildRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const build = await builds.get(jobId);
    if (['succeeded', 'failed', 'superseded'].includes(build.state)) {
      if (build.state !== 'succeeded' || build.attempts !== 1 || build.changed !== true) {
        const why = build.error ? `: ${build.error.kind}: ${build.error.message}` : '';
        throw new Error(
          `build ${jobId} ${build.state} after ${build.attempts} attempt(s), changed ${String(build.changed)}${why}`,
        );
      }
      return build;
    }
    if (Date.now() > deadline) throw new Error(`build ${jobId} still ${build.state}`);
    await sleep(BUILD_POLL_MS, signal);
  }
}

/**
 * When the build entered `evaluating` and `succeeded`: each state change appends a log
 * line stamped with the builder's clock (this machine's), e.g.
 * `2026-12-02T10:00:00.123Z evaluating git+file://…`.
 */
function stateStamps(build: BuildRecord): { evaluating: number; succeeded: number } {
  const stamp = (prefix: string): number => {
    const line = build.log.findLast((entry) => entry.split(' ')[1] === prefix);
    if (line === undefined) throw new Error(`build ${build.id}: no "${prefix}" line in its log`);
    return Date.parse(line.split(' ')[0]!);
  };
  // finish() logs `applied` (or `already applied: …`, which finishedBuild refuses).
  return { evaluating: stamp('evaluating'), succeeded: stamp('applied') };
}
