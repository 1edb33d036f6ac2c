// The driver interface the shoot pool uses, with a QEMU (qemu.hypervisor.ts) and a Cloud
// Hypervisor (clh.hypervisor.ts) implementation. Pool logic never branches on which one it
// has (STYLE.md rule 14).
//
// Life of a pool:
//
//   const snapshot = await hv.snapshot(await hv.startTemplate({ image, memoryMiB, vcpus }));
//   const vm = await hv.startClone(snapshot, { mountPoints: ['store', 'vol0'] });
//   // warm: restored, clock set, agent connected. Mount the share once, before a caller:
//   await vm.agent.mount({ fstype: vm.share.fstype, source: vm.share.tag, target: '/run/shoot', readOnly: false });
//   // at request time, without touching the VMM:
//   vm.bindIntoExport('/var/lib/seed/volumes/x', 'vol0', { readOnly: false });
//   vm.bindIntoExport('/nix/store', 'store', { readOnly: true });
//   const result = await vm.agent.exec({ argv, env, stdin, timeoutMs });
//   await vm.destroy(); // never reuse a clone: it keeps the caller's processes and /tmp
import type { AgentClient } from '../agent/agent.client';

/**
 * The guest (scripts/guest-image): uncompressed kernels with a PVH entry, one SMP and one
 * uniprocessor, and the initramfs.
 */
export interface GuestImage {
  kernel: string;
  uniprocessorKernel: string;
  initramfs: string;
}

/**
 * The kernel a VM of `vcpus` boots. One vCPU gets the uniprocessor build: no SMP locking,
 * per-CPU bookkeeping or tree RCU, which under TCG every clone's QEMU would translate
 * afresh (~8% of the CPU to restore and warm a clone).
 */
export function guestKernel(image: GuestImage, vcpus: number): string {
  return vcpus === 1 ? image.uniprocessorKernel : image.kernel;
}

export interface TemplateSpec {
  /** Names the VM's run directory; a random one by default. [a-z0-9-], at most 40 characters. */
  id?: string;
  image: GuestImage;
  memoryMiB: number;
  vcpus: number;
  /** How long the guest may take to boot and answer the agent; 60 s by default (TCG ≈ 3 s). */
  bootTimeoutMs?: number;
}

export interface CloneSpec {
  /** As in TemplateSpec. */
  id?: string;
  /**
   * Subfolders created in the clone's export folder before the VMM starts. The export
   * folder itself is then sealed read-only (guest writes outside a bound subfolder fail
   * rather than landing on the host disk), so `bindIntoExport` can only use these.
   */
  mountPoints?: readonly string[];
  /** How long restore + first agent answer may take; 30 s by default (TCG ≈ 0.3 s). */
  readyTimeoutMs?: number;
  /**
   * Called, synchronously, as the restore passes each phase boundary, with the VMM's pid:
   * lets a profiler (bench/shoot) read the VMM's CPU time per phase. Drivers call the
   * phases they have, in this order.
   */
  onPhase?: (phase: RestorePhase, vmmPid: number) => void;
}

/**
 * A restore's phase boundaries: the VMM is up and waiting for the state (`started`), the
 * state is loaded and the guest runs (`loaded`), the guest's agent answered (`answered`),
 * its clock is set and its RNG reseeded (`woken`).
 */
export type RestorePhase = 'started' | 'loaded' | 'answered' | 'woken';

/** The host folder shared into the guest, and how the guest mounts it. */
export interface VmShare {
  /** The 9p mount tag (QEMU) or virtio-fs tag (Cloud Hypervisor). */
  tag: string;
  /** What the guest's `mount` request names as fstype. */
  fstype: '9p' | 'virtiofs';
  /** The host folder: the clone's own export folder. */
  hostDir: string;
}

export interface BindOptions {
  readOnly: boolean;
  /** Take the mounts under the source along (a closure view). */
  recursive?: boolean;
}

/** How a VMM process ended. */
export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Whether `destroy` ended it (rather than a crash or the guest powering off). */
  destroyed: boolean;
}

export type VmRole = 'template' | 'clone';

export interface MicroVm {
  readonly id: string;
  readonly role: VmRole;
  /** The VMM's process id. */
  readonly pid: number;
  /** Where the VM's sockets, logs and export folder live on the host. */
  readonly runDir: string;
  /**
   * The host folder shared into the guest, or undefined where the VM has no share device:
   * a Cloud Hypervisor template (CH cannot snapshot a VM with virtio-fs attached; its
   * clones get the device at restore). Every clone has one (CloneVm).
   */
  readonly share: VmShare | undefined;
  /** The guest agent, connected (it reconnects on its own if the connection drops). */
  readonly agent: AgentClient;
  /** Settles when the VMM process ends, for whatever reason. Never rejects. */
  readonly exited: Promise<VmExit>;
  /**
   * Bind-mounts a host folder (or file) onto `<export>/<mountPoint>`, read-only if asked;
   * the guest sees it at once under its mount of the share. The unmount is registered on
   * the VM's cleanup stack (after the VMM is killed, before files are removed). Returns
   * the host path of the mount point. Synchronous: the mount(2) syscall from the daemon.
   */
  bindIntoExport(source: string, mountPoint: string, options: BindOptions): string;
  /**
   * Runs the VM at the daemon's own priority: a clone is restored at a lower one, so that
   * a refill does not slow the shoots running beside it; the pool calls this once the
   * clone is warm, before a shoot may get it.
   */
  prioritize(): Promise<void>;
  /**
   * Registers an undo of the caller's own on this VM's cleanup stack: it runs at
   * `destroy`, before everything the VM acquired when it started.
   */
  defer(label: string, undo: () => void | Promise<void>): void;
  /**
   * Kills the VMM, unmounts what was bound, removes the VM's files. Runs once; later
   * calls wait for the first. Never throws: cleanup failures are logged by the driver.
   */
  destroy(): Promise<void>;
}

/** A VM restored from a snapshot: every driver gives a clone its share. */
export interface CloneVm extends MicroVm {
  readonly share: VmShare;
}

/** A saved template: device state plus guest memory, from which clones start. */
export interface VmSnapshot {
  readonly id: string;
  /** Where its files live. */
  readonly dir: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  /** Removes its files. Clones already running are unaffected (they mapped the memory). */
  destroy(): Promise<void>;
}

/** Processes and files a previous daemon left behind, and what `reapOrphans` did about them. */
export interface ReapReport {
  /** VMM (and helper) processes killed. */
  killed: number[];
  /** Host mounts undone. */
  unmounted: string[];
  /** Files and directories removed. */
  removed: string[];
}

export interface Hypervisor {
  readonly kind: 'qemu' | 'cloud-hypervisor';
  /** The directory this driver keeps every VM's files under; nothing else may use it. */
  readonly runRoot: string;
  /** Boots a VM from the image and waits until its agent answers. */
  startTemplate(spec: TemplateSpec): Promise<MicroVm>;
  /**
   * Saves a template and consumes it: the template is paused, saved and destroyed (its
   * memory now belongs to the snapshot). Snapshot with the share unmounted: a VM with a
   * mounted 9p share cannot be migrated (one that mounted it and unmounted it again can).
   */
  snapshot(template: MicroVm): Promise<VmSnapshot>;
  /**
   * Restores a VM from the snapshot with its own export folder and resumes it, then sets
   * its clock and waits until its agent answers.
   */
  startClone(snapshot: VmSnapshot, spec?: CloneSpec): Promise<CloneVm>;
  /**
   * Kills every VMM a previous daemon left running under `runRoot`, undoes its mounts and
   * removes its files. Call it once at start-up, before starting any VM.
   */
  reapOrphans(): Promise<ReapReport>;
}

/**
 * What failed, for callers that decide without parsing text. `retryable` says whether a
 * fresh attempt (a new VM) may succeed.
 */
export type VmErrorKind =
  | 'invalid' // a bad spec, or a VM/snapshot this driver did not make or in the wrong state
  | 'spawn' // the VMM could not be started or exited at once (binary, arguments, accel)
  | 'boot' // the guest did not answer the agent in time after a boot
  | 'snapshot' // saving the template failed
  | 'restore' // restoring a clone failed, or its agent did not answer in time
  | 'host'; // a host-side resource failed (mount, file, directory)

const RETRYABLE: ReadonlySet<VmErrorKind> = new Set(['boot', 'snapshot', 'restore']);

export class VmError extends Error {
  override readonly name = 'VmError';
  readonly retryable: boolean;
  /** The last lines of the guest console and VMM log, when the guest is what failed. */
  readonly consoleTail?: string;

  constructor(
    readonly kind: VmErrorKind,
    readonly vmId: string,
    message: string,
    options: { cause?: unknown; retryable?: boolean; consoleTail?: string } = {},
  ) {
    super(`${vmId}: ${message}`, options.cause === undefined ? {} : { cause: options.cause });
    this.retryable = options.retryable ?? RETRYABLE.has(kind);
    this.consoleTail = options.consoleTail;
  }
}

/** Ids name directories and files: keep them to a safe alphabet. */
export const VM_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,39}$/;
