// The warm pool (STYLE.md rule 16): clones restored from one snapshot of a primed
// template (primeTemplate), clock set, share mounted and agent connected before any
// caller is known; one is handed out per shoot and destroyed afterwards (a used clone
// keeps the caller's processes and /tmp), while a replacement is restored in the
// background. Bounded: at most `size` shoots run at once, at most `queueBound` wait, at
// most `perCallerLimit` per caller; drained on shutdown.
import type { Logger } from '@seed/service-kit';
import type { BindRequest, ExecRequest } from '../agent/protocol';
import type { CloneVm, GuestImage, Hypervisor, MicroVm, VmSnapshot } from '../vm/hypervisor';
import { wakeClone } from '../vm/managed-vm';

/** Where every clone mounts its share (the export folder), before a caller is known. */
export const SHARE_TARGET = '/run/shoot';
/**
 * The export subfolder the guest's /nix/store shows (bound in the guest while the clone
 * warms): a caller's closure view is bound into it on the host at request time, or a
 * local store folder while the clone warms.
 */
export const STORE_POINT = 'store';
/** The export subfolder a caller's store goes into when it is not the pre-bound one. */
export const CALLER_STORE_POINT = 'store1';
/** Where the guest sees the store. */
export const GUEST_STORE = '/nix/store';
/** The export subfolders the caller's volumes are bound into, in order (read-write). */
export const VOLUME_POINTS: readonly string[] = Array.from({ length: 8 }, (_, i) => `vol${i}`);

/** The guest-side bind of an export subfolder onto `target`, for an exec's `binds`. */
export function guestBind(point: string, target: string, readOnly: boolean): BindRequest {
  return { source: `${SHARE_TARGET}/${point}`, target, readOnly };
}

/** The queue (or the caller's own share of the pool) is full: HTTP 429. */
export class PoolFull extends Error {
  override readonly name = 'PoolFull';

  constructor(
    readonly scope: 'queue' | 'caller',
    message: string,
  ) {
    super(message);
  }
}

/** The pool cannot serve now: not started, draining, or no VM came in time. HTTP 503. */
export class PoolUnavailable extends Error {
  override readonly name = 'PoolUnavailable';
}

export interface PoolOptions {
  /** Clones kept warm, and the most shoots running at once. */
  size: number;
  /** Shoots that may wait for a clone; one more is refused with PoolFull. */
  queueBound: number;
  /** Shoots one caller may have running or waiting at once. */
  perCallerLimit: number;
  /** How long a queued shoot waits for a clone before PoolUnavailable. */
  queueTimeoutMs: number;
  image: GuestImage;
  memoryMiB: number;
  vcpus: number;
  /**
   * A host store folder every caller shares (local development only): bound read-only
   * into each clone while it warms, so a shoot does not pay for it. Unset, the guest's
   * /nix/store stays empty until a shoot's store is bound into STORE_POINT.
   */
  store?: string;
}

/** What the pool reports; every transition and failure is counted (rule 16). */
export interface PoolObserver {
  transition(name: PoolTransition): void;
  failure(cause: string): void;
  restored(seconds: number): void;
}

export type PoolTransition =
  | 'started'
  | 'ready'
  | 'start-failed'
  | 'acquired'
  | 'queued'
  | 'dequeued'
  | 'rejected-queue'
  | 'rejected-caller'
  | 'queue-timeout'
  | 'released'
  | 'died-idle'
  | 'drained';

export interface PoolStatus {
  idle: number;
  busy: number;
  starting: number;
  queued: number;
  capacity: number;
  ready: boolean;
}

/** A clone handed to one shoot. `release` destroys it (never reused) and frees the slot. */
export interface Lease {
  readonly vm: CloneVm;
  /** The host store already on the guest's /nix/store, if the pool pre-binds one. */
  readonly store: string | undefined;
  /**
   * Guest binds made while the clone warmed (`prepare`): the volume layout last served.
   * A shoot of that layout needs none of them again; any other shoot unbinds them first.
   */
  readonly prepared: readonly BindRequest[];
  release(): Promise<void>;
}

interface Waiter {
  callerKey: string;
  resolve: (lease: Lease) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

type State = 'new' | 'starting' | 'ready' | 'draining' | 'drained';

const MAX_BACKOFF_MS = 30_000;
/**
 * A replacement clone starts when its predecessor's shoot ends, or this long after it
 * began, whichever is first: a restore is ~0.3 s of CPU under TCG, and running it beside a
 * short shoot on a small node doubles that shoot's latency.
 */
const REFILL_DELAY_MS = 50;

/**
 * Everything a clone can do before its caller is known: mount the share, pre-bind the
 * shared store if there is one, bind STORE_POINT onto the guest's /nix/store (the host
 * binds the caller's store there later; 9p without a cache shows it at once) and the
 * volume layout last served onto its mount points (`prepare`), and run one
 * command the way a shoot does (with its guest binds in the exec): a restored guest's first fork faults in pages the snapshot shares (~150 ms under
 * TCG, ~10 ms afterwards), and under TCG each code path runs slowly the first time a VMM
 * process meets it.
 */
async function warm(
  vm: CloneVm,
  store: string | undefined,
  prepared: readonly BindRequest[],
): Promise<void> {
  await vm.agent.mount({
    fstype: vm.share.fstype,
    source: vm.share.tag,
    target: SHARE_TARGET,
    readOnly: false,
  });
  if (store !== undefined) vm.bindIntoExport(store, STORE_POINT, { readOnly: true });
  const first = await vm.agent.exec({
    argv: ['true'],
    timeoutMs: 10_000,
    binds: [guestBind(STORE_POINT, GUEST_STORE, true), ...prepared],
  });
  if (first.exitCode !== 0) throw new Error(`warm-up command exited ${first.exitCode}`);
}

/** Where a template makes its primed bind; removed again before the snapshot. */
const PRIME_TARGET = '/run/template-prime';

/**
 * What a template does before its snapshot: each request its clones will make (the
 * wake's clock and RNG, the share's mount if the template has its share, an exec with a
 * bind and one with an unbind), then undone. Clones inherit the first-use state these
 * leave in the guest (the agent's decoders and handlers, the kernel's 9p client) instead
 * of each building it anew: under TCG a clone restored and warm took 231–237 ms of QEMU
 * CPU against 288–336 without (README, "Measured"). The share is unmounted again: QEMU
 * migrates no guest that has a 9p export mounted. The entropy is any: every clone is
 * reseeded after its restore.
 */
export async function primeTemplate(template: MicroVm): Promise<void> {
  const { agent, share } = template;
  await wakeClone(agent);
  if (share !== undefined) {
    await agent.mount({
      fstype: share.fstype,
      source: share.tag,
      target: SHARE_TARGET,
      readOnly: false,
    });
  }
  const exec = async (request: Omit<ExecRequest, 'argv' | 'timeoutMs'>) => {
    const result = await agent.exec({ argv: ['true'], timeoutMs: 10_000, ...request });
    if (result.exitCode !== 0) {
      throw new Error(`priming command exited ${result.exitCode}`);
    }
  };
  await exec({
    binds: [
      { source: share === undefined ? '/bin' : SHARE_TARGET, target: PRIME_TARGET, readOnly: true },
    ],
  });
  await exec({ unbinds: [PRIME_TARGET], binds: [] });
  if (share !== undefined) await agent.unmount({ target: SHARE_TARGET, lazy: false });
}

export class WarmPool {
  readonly #hv: Hypervisor;
  readonly #options: PoolOptions;
  readonly #observer: PoolObserver;
  readonly #logger: Logger;
  #state: State = 'new';
  #snapshot: VmSnapshot | undefined;
  /** Warm clones, oldest first, each with the guest binds it made while warming. */
  readonly #idle: Pick<Lease, 'vm' | 'prepared'>[] = [];
  /** The volume layout clones prepare from now on: the last one served. */
  #layout: readonly BindRequest[] = [];
  readonly #leased = new Set<MicroVm>();
  /** Every VM not yet destroyed: idle, busy, or still starting. */
  readonly #live = new Set<MicroVm>();
  readonly #starts = new Set<Promise<void>>();
  #booting: Promise<void> | undefined;
  readonly #teardowns = new Set<Promise<void>>();
  readonly #waiters: Waiter[] = [];
  readonly #perCaller = new Map<string, number>();
  #busy = 0;
  #starting = 0;
  #consecutiveFailures = 0;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(hv: Hypervisor, options: PoolOptions, observer: PoolObserver, logger: Logger) {
    for (const key of ['size', 'queueBound', 'perCallerLimit'] as const) {
      if (!Number.isInteger(options[key]) || options[key] < (key === 'queueBound' ? 0 : 1)) {
        throw new Error(`pool ${key} must be a positive integer, not ${options[key]}`);
      }
    }
    this.#hv = hv;
    this.#options = options;
    this.#observer = observer;
    this.#logger = logger;
  }

  /**
   * Reaps what a previous daemon left, boots the template, snapshots it and restores the
   * first clones; resolves when those attempts settled (failed ones are retried later).
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`pool cannot start: it is ${this.#state}`);
    this.#state = 'starting';
    const started = performance.now();
    const boot = this.#bootTemplate();
    // A drain while the template boots waits for it, then destroys the snapshot: a
    // shutdown must not leave the template's VMM or share behind.
    this.#booting = boot.then(
      () => undefined,
      () => undefined,
    );
    await boot;
    if (this.#state !== 'starting') return; // drained while booting
    this.#state = 'ready';
    this.#logger.info(
      {
        ms: Math.round(performance.now() - started),
        size: this.#options.size,
        hypervisor: this.#hv.kind,
      },
      'template snapshotted; restoring clones',
    );
    this.#refill();
    await Promise.allSettled([...this.#starts]);
  }

  /** Reaps what a previous daemon left, boots the template and snapshots it. */
  async #bootTemplate(): Promise<void> {
    const reaped = await this.#hv.reapOrphans();
    if (reaped.killed.length + reaped.unmounted.length + reaped.removed.length > 0) {
      this.#logger.warn({ reaped }, 'reaped VMs a previous daemon left behind');
    }
    const template = await this.#hv.startTemplate({
      id: 'template',
      image: this.#options.image,
      memoryMiB: this.#options.memoryMiB,
      vcpus: this.#options.vcpus,
    });
    try {
      await primeTemplate(template);
      this.#snapshot = await this.#hv.snapshot(template);
    } catch (error) {
      await template.destroy();
      throw error;
    }
  }

  status(): PoolStatus {
    return {
      idle: this.#idle.length,
      busy: this.#busy,
      starting: this.#starting,
      queued: this.#waiters.length,
      capacity: this.#options.size,
      ready: this.#state === 'ready',
    };
  }

  /**
   * The guest binds of the volume layout just served (made without error): clones that
   * warm from now on make them before their caller is known, saving the next shoot of the
   * same layout its guest binds (~5 ms of its round trip under TCG; README, "Measured").
   * Their sources are export subfolders the host binds a caller's volume into only at
   * request time (9p resolves paths on the host at each request, so a guest bind made
   * first shows it), and their targets are removed again before a shoot of another layout
   * runs (Lease.prepared).
   */
  prepare(binds: readonly BindRequest[]): void {
    this.#layout = binds;
  }

  /** The VMM process ids of the clones running shoots now (diagnostics, tests). */
  busyPids(): number[] {
    return [...this.#leased].map((vm) => vm.pid);
  }

  /**
   * A warm clone for one shoot, at once or after waiting in the bounded FIFO queue.
   * Throws PoolFull when the queue or the caller's own limit is full, PoolUnavailable when
   * the pool is not serving or no clone came within `queueTimeoutMs`.
   */
  acquire(callerKey: string): Promise<Lease> {
    if (this.#state !== 'ready') {
      return Promise.reject(new PoolUnavailable(`the pool is ${this.#state}`));
    }
    const mine = this.#perCaller.get(callerKey) ?? 0;
    if (mine >= this.#options.perCallerLimit) {
      this.#observer.transition('rejected-caller');
      return Promise.reject(
        new PoolFull(
          'caller',
          `caller ${callerKey} already has ${mine} shoots running or queued (limit ${this.#options.perCallerLimit})`,
        ),
      );
    }
    if (this.#waiters.length === 0 && this.#canTake()) {
      return Promise.resolve(this.#take(callerKey));
    }
    if (this.#waiters.length >= this.#options.queueBound) {
      this.#observer.transition('rejected-queue');
      return Promise.reject(
        new PoolFull(
          'queue',
          `the pool is full: ${this.#busy} shoots running, ${this.#waiters.length} queued (bound ${this.#options.queueBound})`,
        ),
      );
    }
    this.#observer.transition('queued');
    this.#perCaller.set(callerKey, mine + 1);
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        callerKey,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#removeWaiter(waiter);
          this.#observer.transition('queue-timeout');
          reject(new PoolUnavailable(`no warm VM within ${this.#options.queueTimeoutMs} ms`));
        }, this.#options.queueTimeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Refuses new shoots, fails queued ones and destroys every VM and the snapshot. */
  async drain(): Promise<void> {
    if (this.#state === 'drained' || this.#state === 'draining') {
      await Promise.allSettled([...this.#starts, ...this.#teardowns]);
      return;
    }
    this.#state = 'draining';
    clearTimeout(this.#retryTimer);
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      this.#uncount(waiter.callerKey);
      waiter.reject(new PoolUnavailable('the pool is shutting down'));
    }
    await this.#booting;
    await Promise.allSettled([...this.#starts]);
    this.#idle.splice(0);
    for (const vm of this.#live) {
      this.#observer.transition('drained');
      void this.#destroy(vm);
    }
    await Promise.allSettled([...this.#teardowns]);
    await this.#snapshot?.destroy();
    this.#snapshot = undefined;
    this.#state = 'drained';
  }

  #canTake(): boolean {
    return this.#idle.length > 0 && this.#busy < this.#options.size;
  }

  /** Hands the oldest idle clone to a caller whose count is already taken care of by `count`. */
  #take(callerKey: string, counted = false): Lease {
    const { vm, prepared } = this.#idle.shift()!;
    this.#busy += 1;
    this.#leased.add(vm);
    if (!counted) this.#perCaller.set(callerKey, (this.#perCaller.get(callerKey) ?? 0) + 1);
    this.#observer.transition('acquired');
    const refill = setTimeout(() => this.#refill(), REFILL_DELAY_MS);
    let released: Promise<void> | undefined;
    return {
      vm,
      store: this.#options.store,
      prepared,
      release: () => {
        released ??= (async () => {
          clearTimeout(refill);
          this.#busy -= 1;
          this.#leased.delete(vm);
          this.#uncount(callerKey);
          this.#observer.transition('released');
          this.#dispatch();
          // The HTTP and gRPC adapters write the shoot's answer in the turn of the event loop
          // in which the shoot resolves (they do nothing else first); the teardown and the
          // restore spawn processes (a spawn blocks the loop for ~1-3 ms), so they wait for
          // the next turn, after that write.
          await new Promise((resolve) => setImmediate(resolve));
          this.#refill();
          await this.#destroy(vm);
        })();
        return released;
      },
    };
  }

  #uncount(callerKey: string): void {
    const left = (this.#perCaller.get(callerKey) ?? 1) - 1;
    if (left <= 0) this.#perCaller.delete(callerKey);
    else this.#perCaller.set(callerKey, left);
  }

  #removeWaiter(waiter: Waiter): void {
    const index = this.#waiters.indexOf(waiter);
    if (index >= 0) this.#waiters.splice(index, 1);
    this.#uncount(waiter.callerKey);
  }

  /** Gives idle clones to queued shoots, oldest first, within the running bound. */
  #dispatch(): void {
    while (this.#state === 'ready' && this.#waiters.length > 0 && this.#canTake()) {
      const waiter = this.#waiters.shift()!;
      clearTimeout(waiter.timer);
      this.#observer.transition('dequeued');
      waiter.resolve(this.#take(waiter.callerKey, true));
    }
  }

  /** Starts clones until `size` are idle or starting, unless backing off after failures. */
  #refill(): void {
    if (this.#state !== 'ready' || this.#retryTimer !== undefined) return;
    while (this.#idle.length + this.#starting < this.#options.size) {
      const start = this.#startClone();
      this.#starts.add(start);
      void start.finally(() => this.#starts.delete(start));
    }
  }

  async #startClone(): Promise<void> {
    const snapshot = this.#snapshot!;
    this.#starting += 1;
    this.#observer.transition('started');
    const started = performance.now();
    const layout = this.#layout;
    let vm: CloneVm | undefined;
    try {
      vm = await this.#hv.startClone(snapshot, {
        mountPoints: [STORE_POINT, CALLER_STORE_POINT, ...VOLUME_POINTS],
      });
      this.#live.add(vm);
      await warm(vm, this.#options.store, layout);
      await vm.prioritize();
    } catch (error) {
      // Whatever failed, the next clones prepare nothing: a layout must never keep the
      // pool from warming.
      if (this.#layout === layout) this.#layout = [];
      this.#starting -= 1;
      this.#observer.transition('start-failed');
      this.#observer.failure('clone-start');
      if (vm !== undefined) void this.#destroy(vm);
      this.#backOff(error);
      return;
    }
    this.#starting -= 1;
    this.#consecutiveFailures = 0;
    if (this.#state !== 'ready') {
      void this.#destroy(vm);
      return;
    }
    this.#observer.restored((performance.now() - started) / 1000);
    this.#observer.transition('ready');
    const idle = { vm, prepared: layout };
    this.#idle.push(idle);
    void vm.exited.then((exit) => {
      const index = this.#idle.indexOf(idle);
      if (exit.destroyed || index < 0) return;
      this.#idle.splice(index, 1);
      this.#observer.transition('died-idle');
      this.#observer.failure('vmm-died-idle');
      this.#logger.warn({ vm: idle.vm.id, exit }, 'an idle VM died; replacing it');
      void this.#destroy(idle.vm);
      this.#refill();
    });
    this.#dispatch();
  }

  #backOff(error: unknown): void {
    this.#consecutiveFailures += 1;
    const delayMs = Math.min(MAX_BACKOFF_MS, 250 * 2 ** (this.#consecutiveFailures - 1));
    this.#logger.error({ err: error, retryInMs: delayMs }, 'a clone failed to start');
    if (this.#state !== 'ready' || this.#retryTimer !== undefined) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#refill();
    }, delayMs);
  }

  #destroy(vm: MicroVm): Promise<void> {
    const teardown = vm.destroy().finally(() => {
      this.#live.delete(vm);
      this.#teardowns.delete(teardown);
    });
    this.#teardowns.add(teardown);
    return teardown;
  }
}
