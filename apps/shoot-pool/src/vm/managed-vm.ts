// What both drivers share about one VM: its run directory and export folder, the binds
// made into it, its VMM process, and the cleanup stack that undoes all of it once.
import { randomBytes } from 'node:crypto';
import { getPriority } from 'node:os';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { AgentClient } from '../agent/agent.client';
import { CleanupStack } from './cleanup-stack';
import { removeUnmountedTree } from '@seed/mount-table';
import { MountError, bindMount, unmountAll } from './host-mounts';
import {
  VmError,
  type BindOptions,
  type MicroVm,
  type VmErrorKind,
  type VmExit,
  type VmRole,
  type VmShare,
  type VmSnapshot,
} from './hypervisor';
import { writeRecord } from './run-dir';
import type { VmLog } from './vm-log';
import { killVmm, setProcessPriority, type VmmProcess } from './vmm-process';

/** Bytes of host entropy each restored clone gets: two CRNG keys' worth. */
const CLONE_ENTROPY_BYTES = 64;

/**
 * What a restored clone needs before anything runs in it, whichever VMM restored it: the
 * host's time (it wakes with the snapshot's) and fresh randomness (it wakes with the
 * snapshot's kernel RNG state, the same as every other clone of that snapshot).
 */
export async function wakeClone(agent: AgentClient, signal?: AbortSignal): Promise<void> {
  await agent.setClock(Date.now(), { signal });
  await agent.reseed(randomBytes(CLONE_ENTROPY_BYTES), { signal });
}

/** A mount point name: one path segment, no dot-files. */
const MOUNT_POINT = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/;

/**
 * A VM being started. Each step registers its undo on the stack as it acquires something;
 * if a later step fails, `fail` unwinds everything acquired so far and throws a VmError.
 */
export class VmLaunch {
  readonly stack = new CleanupStack();
  /** Host mount points bound into the export folder, in the order they were made. */
  readonly binds: string[] = [];
  /** Fires when the VMM process ends: waits on the guest give up at once. */
  readonly vmmExit = new AbortController();
  #process: VmmProcess | undefined;
  #record: object = {};
  #destroying = false;

  constructor(
    readonly id: string,
    readonly role: VmRole,
    readonly runDir: string,
    readonly log: VmLog,
  ) {}

  get process(): VmmProcess | undefined {
    return this.#process;
  }

  get destroying(): boolean {
    return this.#destroying;
  }

  async createRunDir(): Promise<void> {
    await mkdir(path.dirname(this.runDir), { recursive: true });
    await mkdir(this.runDir); // fails if the id is already in use
    await this.stack.push('remove run directory', () => removeUnmountedTree(this.runDir));
  }

  /**
   * Creates `<runDir>/export` with the given mount points, seals it read-only (a
   * read-only bind of itself) and registers the undo of every later bind into it. The
   * VMM exports this folder to the guest.
   */
  async createExport(mountPoints: readonly string[]): Promise<string> {
    const exportDir = path.join(this.runDir, 'export');
    await mkdir(exportDir);
    for (const name of mountPoints) {
      if (!MOUNT_POINT.test(name)) {
        throw new VmError(
          'invalid',
          this.id,
          `mount point ${JSON.stringify(name)} is not a plain name`,
        );
      }
      await mkdir(path.join(exportDir, name));
    }
    // Sealed before the VMM starts: a guest write outside a bound subfolder then fails
    // (EROFS) instead of landing on the host disk.
    bindMount(exportDir, exportDir, { readOnly: true });
    // Also undoes every bind made into it later, innermost first. Registered now so that
    // it runs after the VMM is killed (a busy guest file would block the unmount) and
    // before files go.
    await this.stack.push('unmount export', () =>
      unmountAll([...this.binds.splice(0).reverse(), exportDir]),
    );
    return exportDir;
  }

  /**
   * Writes `<runDir>/vm.json` (which VMM, which memory files): before the VMM starts, so
   * a crash right after still leaves it findable, and again with the pid once it runs.
   */
  async writeRecord(record: object): Promise<void> {
    this.#record = record;
    await writeRecord(path.join(this.runDir, 'vm.json'), record);
  }

  /** Registers the VMM process: killed first at teardown, and watched for exits. */
  async track(process: VmmProcess): Promise<void> {
    this.#process = process;
    void process.exited.then(() => this.vmmExit.abort());
    await this.stack.push('kill VMM', () => killVmm(process));
    await this.writeRecord({ ...this.#record, pid: process.pid });
  }

  /**
   * Registers a helper process (virtiofsd). Started before the VMM, it is killed after
   * it: the VMM holds its socket.
   */
  async trackHelper(label: string, process: VmmProcess): Promise<void> {
    await this.stack.push(`kill ${label}`, () => killVmm(process));
  }

  /** Unwinds what was acquired, then throws `kind` with the guest's last console lines. */
  async fail(kind: VmErrorKind, message: string, cause?: unknown): Promise<never> {
    const consoleTail = await this.consoleTail();
    await this.teardown();
    throw cause instanceof VmError
      ? cause
      : new VmError(kind, this.id, message, { cause, consoleTail });
  }

  async teardown(): Promise<void> {
    this.#destroying = true;
    const failures = await this.stack.run();
    for (const failure of failures) {
      this.log.warn(
        { vmId: this.id, step: failure.label, err: String(failure.error) },
        'VM cleanup step failed',
      );
    }
  }

  /**
   * How the VMM ended and the last line it wrote (its own error, for QEMU), for a message
   * that says why a VM failed without opening its run folder; undefined if it still runs
   * after `graceMs`. The grace is for a VMM that is dying: its sockets close before its
   * exit is reaped.
   */
  async vmmExitReport(graceMs: number): Promise<string | undefined> {
    if (this.#process === undefined) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      this.#process.exited,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), graceMs))),
    ]);
    clearTimeout(timer);
    if (exit === undefined) return undefined;
    const { code, signal } = exit;
    const status = signal === null ? `exit status ${code}` : `killed by ${signal}`;
    const lines = (await readTail(path.join(this.runDir, 'vmm.log'), 1024)).trim().split('\n');
    const last = lines.at(-1) ?? '';
    return last === '' ? status : `${status}: ${last}`;
  }

  /** The end of the guest console and of the VMM's own log, for error reports. */
  async consoleTail(bytes = 2048): Promise<string> {
    const parts: string[] = [];
    for (const name of ['console.log', 'vmm.log']) {
      const tail = await readTail(path.join(this.runDir, name), bytes);
      if (tail !== '') parts.push(`--- ${name}\n${tail}`);
    }
    return parts.join('\n');
  }
}

/** A running VM, whichever VMM runs it. */
export class ManagedVm implements MicroVm {
  readonly exited: Promise<VmExit>;

  constructor(
    readonly launch: VmLaunch,
    readonly pid: number,
    readonly agent: AgentClient,
    readonly share: VmShare | undefined,
  ) {
    const process = launch.process;
    if (process === undefined) throw new Error('ManagedVm needs a tracked VMM process');
    this.exited = process.exited.then((exit) => ({ ...exit, destroyed: launch.destroying }));
  }

  get id(): string {
    return this.launch.id;
  }

  get role(): VmRole {
    return this.launch.role;
  }

  get runDir(): string {
    return this.launch.runDir;
  }

  /** Whether destroy has been called. */
  get destroyed(): boolean {
    return this.launch.destroying;
  }

  bindIntoExport(source: string, mountPoint: string, options: BindOptions): string {
    if (this.destroyed) throw new VmError('invalid', this.id, 'VM is destroyed');
    if (!MOUNT_POINT.test(mountPoint)) {
      throw new VmError(
        'invalid',
        this.id,
        `mount point ${JSON.stringify(mountPoint)} is not a plain name`,
      );
    }
    if (this.share === undefined) {
      throw new VmError('invalid', this.id, 'VM has no share device to bind into');
    }
    const target = path.join(this.share.hostDir, mountPoint);
    try {
      bindMount(source, target, { ...options, directories: true });
    } catch (error) {
      const step = error instanceof MountError ? error.failure?.step : undefined;
      if (step === 'source' || step === 'target') {
        const hint = step === 'target' ? ' (declare it in CloneSpec.mountPoints)' : '';
        throw new VmError(
          'invalid',
          this.id,
          `cannot bind ${source} onto mount point ${mountPoint}${hint}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      throw new VmError('host', this.id, (error as Error).message, { cause: error });
    }
    this.launch.binds.push(target);
    return target;
  }

  /** Every thread of the VMM at the daemon's own priority (a clone restores lower). */
  async prioritize(): Promise<void> {
    await setProcessPriority(this.pid, getPriority());
  }

  defer(label: string, undo: () => void | Promise<void>): void {
    void this.launch.stack.push(label, undo).then((failure) => {
      if (failure !== undefined) {
        this.launch.log.warn(
          { vmId: this.id, step: label, err: String(failure.error) },
          'VM cleanup step failed',
        );
      }
    });
  }

  destroy(): Promise<void> {
    return this.launch.teardown();
  }
}

async function readTail(file: string, bytes: number): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * What both drivers' snapshots share: identity, machine size and a cleanup stack that
 * removes the snapshot's files once. `H` is the driver that made it, which checks a
 * snapshot handed back to it is its own.
 */
export abstract class ManagedSnapshot<
  H,
  M extends { memoryMiB: number; vcpus: number },
> implements VmSnapshot {
  #destroyed = false;

  constructor(
    readonly hypervisor: H,
    readonly id: string,
    readonly dir: string,
    readonly machine: M,
    readonly stack: CleanupStack,
  ) {}

  get memoryMiB(): number {
    return this.machine.memoryMiB;
  }

  get vcpus(): number {
    return this.machine.vcpus;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  async destroy(): Promise<void> {
    this.#destroyed = true;
    await this.stack.run();
  }
}
