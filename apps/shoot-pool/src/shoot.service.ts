// One shoot: check the request and the caller, take a warm clone, hand it the caller's
// store and volumes, run the command, answer, destroy the clone.
//
// How the guest sees the caller's folders. Every clone has its 9p share (its own export
// folder) mounted at /run/shoot before a caller is known, and /run/shoot/store bound onto
// /nix/store (read-only). At request time the host binds the caller's closure view
// (store/closure-views.ts: its image's closure, nothing else of the node's store) into
// `export/store`, read-only, and volume i into `export/vol<i>` (read-write); the agent
// bind-mounts /run/shoot/vol<i> onto the volume's own mount point (as in the caller's
// pod), so commands see the paths they see in the caller; a clone that warmed after a
// shoot of the same volume layout made those guest binds already (WarmPool.prepare), and
// one that made another layout's has the agent unbind and remove them first, in the exec's
// own round trip. A local pool that pre-binds a store folder (development) binds a
// caller's other store into `export/store1` and onto /nix/store over it.
import { isUtf8 } from 'node:buffer';
import type { Logger } from '@seed/service-kit';
import { shootCommandSchema, shootRequestSchema, type ShootAnswer } from '@seed/contracts';
import type { z } from 'zod';
import { AgentError } from './agent/agent.errors';
import type { BindRequest } from './agent/protocol';
import {
  CallerRejected,
  type Caller,
  type CallerClaim,
  type CallerResolver,
} from './caller/caller';
import type { FailureCause, ShootMetrics, ShootPhase } from './metrics';
import { ClosureUnavailable, type ClosureViews, type HeldView } from './store/closure-views';
import {
  CALLER_STORE_POINT,
  GUEST_STORE,
  PoolFull,
  PoolUnavailable,
  SHARE_TARGET,
  STORE_POINT,
  VOLUME_POINTS,
  guestBind,
  type Lease,
  type PoolStatus,
  type WarmPool,
} from './pool/pool';
import { VmError } from './vm/hypervisor';

/** Guest paths a caller's volume may not be mounted on, nor under (but `/`). */
const RESERVED = ['/', '/proc', '/sys', '/dev', '/nix', '/run', SHARE_TARGET];

/** The request is malformed: HTTP 400 with every reason. */
export class ShootInvalid extends Error {
  override readonly name = 'ShootInvalid';

  constructor(readonly reasons: string[]) {
    super(`invalid shoot: ${reasons.join('; ')}`);
  }
}

/** The VM failed under the command (its VMM died, the agent broke): HTTP 502. */
export class ShootVmFailed extends Error {
  override readonly name = 'ShootVmFailed';
}

export interface ShootLimits {
  /** Per stream; the agent caps and flags truncation. */
  maxOutputBytes: number;
  maxStdinBytes: number;
}

/** A checked request, the same for HTTP and gRPC. */
export interface ShootCommand {
  argv: string[];
  timeoutMs: number;
  env: Record<string, string>;
  stdin?: Buffer;
}

export interface ShootOutcome {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  durationMs: number;
  timedOut: boolean;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function reasonsOf(error: z.ZodError): string[] {
  return error.issues.map((issue) =>
    issue.path.length === 0 ? issue.message : `${issue.path.join('.')}: ${issue.message}`,
  );
}

/** Checks a POST /shoot JSON body. */
export function parseHttpShoot(body: unknown, limits: ShootLimits): ShootCommand {
  const result = shootRequestSchema.safeParse(body ?? undefined);
  if (!result.success) throw new ShootInvalid(reasonsOf(result.error));
  const { command, timeout, env, stdin, stdinEncoding } = result.data;
  let stdinBytes: Buffer | undefined;
  if (stdin !== undefined) {
    if (stdinEncoding === 'base64' && (stdin.length % 4 !== 0 || !BASE64.test(stdin))) {
      throw new ShootInvalid(['stdin: not valid base64']);
    }
    stdinBytes = Buffer.from(stdin, stdinEncoding);
  }
  return checkSizes({ argv: command, timeoutMs: timeout, env, stdin: stdinBytes }, limits);
}

/** Checks a gRPC ShootRequest (timeout 0 means the default; stdin is bytes). */
export function parseGrpcShoot(
  request: { command: string[]; timeoutMs: number; env: Record<string, string>; stdin: Buffer },
  limits: ShootLimits,
): ShootCommand {
  const result = shootCommandSchema.safeParse({
    command: request.command,
    timeout: request.timeoutMs === 0 ? undefined : request.timeoutMs,
    env: request.env,
  });
  if (!result.success) throw new ShootInvalid(reasonsOf(result.error));
  return checkSizes(
    {
      argv: result.data.command,
      timeoutMs: result.data.timeout,
      env: result.data.env,
      stdin: request.stdin.length > 0 ? request.stdin : undefined,
    },
    limits,
  );
}

function checkSizes(command: ShootCommand, limits: ShootLimits): ShootCommand {
  if (command.stdin !== undefined && command.stdin.length > limits.maxStdinBytes) {
    throw new ShootInvalid([
      `stdin: ${command.stdin.length} bytes, at most ${limits.maxStdinBytes} (SEED_SHOOT_MAX_STDIN_BYTES)`,
    ]);
  }
  return command;
}

/** Output as JSON strings: UTF-8 when both streams are valid UTF-8, else both base64. */
export function toAnswer(outcome: ShootOutcome): ShootAnswer {
  const { stdout, stderr, ...rest } = outcome;
  const text = isUtf8(stdout) && isUtf8(stderr);
  return {
    ...rest,
    stdout: stdout.toString(text ? 'utf8' : 'base64'),
    stderr: stderr.toString(text ? 'utf8' : 'base64'),
    ...(text ? {} : { encoding: 'base64' as const }),
  };
}

/** Caller identity, limits and the life of one clone per shoot; transports call this. */
export class ShootService {
  constructor(
    private readonly pool: WarmPool,
    private readonly callers: CallerResolver,
    private readonly views: ClosureViews,
    readonly limits: ShootLimits,
    private readonly metrics: ShootMetrics,
    private readonly logger: Logger,
  ) {}

  status(): PoolStatus {
    return this.pool.status();
  }

  /** Runs a shoot; `parse` checks the transport's request (ShootInvalid), counted like the rest. */
  async run(claim: CallerClaim, parse: () => ShootCommand): Promise<ShootOutcome> {
    const stopTimer = this.metrics.shootSeconds.startTimer();
    try {
      const outcome = await this.#run(claim, this.#timed('parse', parse));
      stopTimer({ outcome: outcome.timedOut ? 'timeout' : 'ok' });
      return outcome;
    } catch (error) {
      const cause = causeOf(error);
      stopTimer({ outcome: cause });
      this.metrics.failures.inc({ cause });
      throw error;
    }
  }

  async #run(claim: CallerClaim, command: ShootCommand): Promise<ShootOutcome> {
    const caller = await this.#timed('caller', () => this.callers.resolve(claim));
    checkVolumes(caller);
    // Built once per image, before a VM is taken; held until the clone that binds it is gone.
    const view = await this.#timed('store-view', () => this.#storeOf(caller));
    let lease: Lease;
    const started = performance.now();
    try {
      lease = await this.#timed('lease', () => this.pool.acquire(caller.key));
    } catch (error) {
      view.release();
      throw error;
    }
    try {
      return await this.#inVm(lease, caller, view.dir, command, started);
    } finally {
      this.#timed('teardown', () => lease.release())
        .catch((error: unknown) =>
          this.logger.error({ err: error, vm: lease.vm.id }, 'destroying a used VM failed'),
        )
        .finally(() => view.release());
    }
  }

  /** How long the transport took to hand the request to `run` (HTTP's `receive` phase). */
  observeReceive(seconds: number): void {
    this.metrics.phaseSeconds.observe({ phase: 'receive' }, seconds);
  }

  /** Serializes and writes a transport's answer (`send`), timed as the `answer` phase. */
  async answer(send: () => unknown): Promise<void> {
    const stop = this.metrics.phaseSeconds.startTimer({ phase: 'answer' });
    try {
      await send();
    } finally {
      stop();
    }
  }

  /** Runs one step of a shoot and records how long it took (also when it throws). */
  #timed<T>(phase: ShootPhase, step: () => T): T {
    const stop = this.metrics.phaseSeconds.startTimer({ phase });
    let result: T;
    try {
      result = step();
    } catch (error) {
      stop();
      throw error;
    }
    if (result instanceof Promise) {
      return result.finally(() => stop()) as T;
    }
    stop();
    return result;
  }

  /** The host folder the guest's /nix/store shows: the closure view of the caller's image. */
  async #storeOf(caller: Caller): Promise<HeldView> {
    if (caller.image === undefined) return { dir: caller.store, release: () => undefined };
    try {
      return await this.views.hold(caller.image);
    } catch (error) {
      if (error instanceof ClosureUnavailable) {
        throw new CallerRejected(
          `cannot share the caller's store: ${error.message}`,
          'unresolvable',
        );
      }
      throw error;
    }
  }

  async #inVm(
    lease: Lease,
    caller: Caller,
    store: string,
    command: ShootCommand,
    started: number,
  ): Promise<ShootOutcome> {
    const { vm } = lease;
    const died = new AbortController();
    void vm.exited.then(() => died.abort());
    const options = { signal: died.signal };
    try {
      // The guest shows STORE_POINT at /nix/store already. A pool that pre-bound a store
      // folder there gets another one bound into CALLER_STORE_POINT and over it.
      const storePoint = lease.store === undefined ? STORE_POINT : CALLER_STORE_POINT;
      const bindStore = lease.store !== store;
      const guestBindsStore = bindStore && lease.store !== undefined;
      this.#timed('host-binds', () => {
        if (bindStore) vm.bindIntoExport(store, storePoint, { readOnly: true, recursive: true });
        caller.volumes.forEach((volume, i) =>
          vm.bindIntoExport(volume.hostPath, VOLUME_POINTS[i]!, { readOnly: false }),
        );
      });
      const volumeBinds = caller.volumes.map((volume, i) =>
        guestBind(VOLUME_POINTS[i]!, volume.mountPoint, false),
      );
      // The clone made the volume binds of the layout last served while it warmed; a
      // caller of another layout must not see that layout's mount points, so they are
      // unbound and removed before its command runs.
      const layoutPrepared = sameBinds(lease.prepared, volumeBinds);
      // Made by the agent in the exec's own round trip.
      const binds = [
        ...(guestBindsStore ? [guestBind(storePoint, GUEST_STORE, true)] : []),
        ...(layoutPrepared ? [] : volumeBinds),
      ];
      const result = await this.#timed('agent', () =>
        vm.agent.exec(
          {
            argv: command.argv,
            env: command.env,
            stdin: command.stdin,
            timeoutMs: command.timeoutMs,
            maxOutputBytes: this.limits.maxOutputBytes,
            unbinds: layoutPrepared ? [] : lease.prepared.map((bind) => bind.target).reverse(),
            binds,
          },
          options,
        ),
      );
      // The guest took these binds: the clones warming from now on make them ahead.
      this.pool.prepare(volumeBinds);
      return {
        exitCode: result.exitCode,
        stdout: result.stdout,
        stderr: result.stderr,
        durationMs: Math.round(performance.now() - started),
        timedOut: result.timedOut,
        stdoutTruncated: result.stdoutTruncated,
        stderrTruncated: result.stderrTruncated,
      };
    } catch (error) {
      if (error instanceof VmError && error.kind === 'invalid') {
        // A caller folder that is missing or not a directory.
        throw new CallerRejected(
          `cannot share the caller's folders: ${error.message}`,
          'unresolvable',
        );
      }
      if (error instanceof AgentError && error.failure?.step === 'bind') {
        throw new CallerRejected(`the guest refused a mount: ${error.message}`, 'unresolvable');
      }
      this.logger.warn({ err: error, vm: vm.id }, 'the VM failed during a shoot');
      throw new ShootVmFailed(
        died.signal.aborted
          ? `the VM died during the command (${error instanceof Error ? error.message : String(error)})`
          : `the VM failed: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    } finally {
      died.abort();
    }
  }
}

function sameBinds(a: readonly BindRequest[], b: readonly BindRequest[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (bind, i) =>
        bind.source === b[i]!.source &&
        bind.target === b[i]!.target &&
        bind.readOnly === b[i]!.readOnly,
    )
  );
}

function checkVolumes(caller: Caller): void {
  if (caller.volumes.length > VOLUME_POINTS.length) {
    throw new CallerRejected(
      `the caller has ${caller.volumes.length} volumes; a shoot shares at most ${VOLUME_POINTS.length}`,
      'unresolvable',
    );
  }
  for (const { mountPoint } of caller.volumes) {
    const normal = mountPoint.replace(/\/+$/, '') || '/';
    const reserved = RESERVED.some(
      (path) =>
        normal === path || (path !== '/' && path !== '/run' && normal.startsWith(`${path}/`)),
    );
    if (!normal.startsWith('/') || normal.split('/').includes('..') || reserved) {
      throw new CallerRejected(
        `volume mount point ${mountPoint} cannot be used in the guest`,
        'unresolvable',
      );
    }
  }
}

/** The failures counter's cause label. */
function causeOf(error: unknown): FailureCause {
  if (error instanceof ShootInvalid) return 'invalid';
  if (error instanceof CallerRejected) return 'caller';
  if (error instanceof PoolFull) return `pool-full-${error.scope}`;
  if (error instanceof PoolUnavailable) return 'unavailable';
  if (error instanceof ShootVmFailed) return 'vm-failed';
  return 'other';
}
