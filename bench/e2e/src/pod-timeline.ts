// When this process saw each pod of a namespace appear, start its container and become
// Ready, from a watch (events arrive as the API server stores them), on this machine's
// clock. The pods' own timestamps (creationTimestamp, startedAt) have one-second
// resolution, too coarse for phases of a few hundred milliseconds.
import { Watch, type KubeConfig, type V1Pod } from '@kubernetes/client-node';

export interface PodTimes {
  name: string;
  uid: string;
  /** Date.now() when the watch first showed the pod. */
  seenAt: number;
  /** When its container was first reported running. */
  runningAt?: number;
  /** When its Ready condition was first reported True. */
  readyAt?: number;
}

export class PodTimeline {
  readonly #pods = new Map<string, PodTimes>();
  #abort: AbortController | undefined;
  #failed: Error | undefined;
  #stopped = false;

  private constructor(
    private readonly config: KubeConfig,
    private readonly namespace: string,
    private readonly labelSelector: string,
  ) {}

  /** Resolves once the watch is open: every pod created after this is seen. */
  static async start(
    config: KubeConfig,
    namespace: string,
    labelSelector: string,
  ): Promise<PodTimeline> {
    const timeline = new PodTimeline(config, namespace, labelSelector);
    await timeline.#watch();
    return timeline;
  }

  /** The uids of every pod seen so far. */
  uids(): Set<string> {
    return new Set(this.#pods.keys());
  }

  /** The first pod not among `known` that is running and Ready, once there is one. */
  async newReadyPod(
    known: ReadonlySet<string>,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<Required<PodTimes>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#failed) throw this.#failed;
      const pod = [...this.#pods.values()].find(
        (p) => !known.has(p.uid) && p.runningAt !== undefined && p.readyAt !== undefined,
      );
      if (pod) return pod as Required<PodTimes>;
      if (Date.now() > deadline) {
        throw new Error(`no new Ready pod in ${this.namespace} within ${timeoutMs} ms`);
      }
      await sleep(20, signal);
    }
  }

  /** Ends the watch for good: the abort's own `done` call must not open a new one. */
  stop(): void {
    this.#stopped = true;
    const abort = this.#abort;
    this.#abort = undefined;
    abort?.abort();
  }

  async #watch(): Promise<void> {
    const watch = new Watch(this.config);
    const abort = await watch.watch(
      `/api/v1/namespaces/${this.namespace}/pods`,
      { labelSelector: this.labelSelector },
      (_type: string, object: V1Pod) => this.#record(object, Date.now()),
      (error: unknown) => {
        // The API server ends a watch after a while; open a new one (a pod's times are
        // kept, and a transition missed while reconnecting is seen in the new listing).
        if (this.#stopped) return;
        this.#watch().catch((reopen: Error) => {
          this.#failed = new Error(`the pod watch ended (${String(error)}): ${reopen.message}`);
        });
      },
    );
    if (this.#stopped) abort.abort();
    else this.#abort = abort;
  }

  #record(pod: V1Pod, at: number): void {
    const uid = pod.metadata?.uid;
    if (uid === undefined) return;
    let times = this.#pods.get(uid);
    if (!times) {
      times = { name: pod.metadata?.name ?? uid, uid, seenAt: at };
      this.#pods.set(uid, times);
    }
    const running = pod.status?.containerStatuses?.some((c) => c.state?.running !== undefined);
    if (running && times.runningAt === undefined) times.runningAt = at;
    const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (ready && times.readyAt === undefined) times.readyAt = at;
  }
}

/** Waits `ms`, or throws the signal's reason once it is aborted. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
