// The Cloud Hypervisor side of a shoot VM, as pure data: the VmConfig a template is
// created with, the snapshot and restore it goes through, the share a clone gets
// hot-plugged, and the argv of the processes. The bodies are tested against CH's OpenAPI
// document (0.3.0); none has reached a real CH (see clh.hypervisor.ts).
import type { FsConfig, RestoreConfig, VmConfig, VmSnapshotConfig } from '@seed/clh-client';
import { guestKernel, type GuestImage } from './hypervisor';

const MIB = 1024 * 1024;

/**
 * Paths CH reopens when a snapshot is restored are relative to the VMM's working
 * directory, which is each VM's own run directory. CH restores the template's config
 * verbatim and has no way to override a vsock socket or serial file on restore, so an
 * absolute path would point every clone at the template's (deleted, shared) socket.
 */
export const CLH_VSOCK_SOCKET = 'vsock.sock';
export const CLH_CONSOLE_LOG = 'console.log';
/** The guest context id; with hybrid vsock it only has to be valid (≥ 3), not unique. */
export const CLH_GUEST_CID = 3;

export interface ClhMachine {
  image: GuestImage;
  memoryMiB: number;
  vcpus: number;
  cmdline: string;
}

/**
 * The template's VM. No share device: CH cannot snapshot vhost-user devices (virtio-fs),
 * so each clone gets its share hot-plugged after the restore (`clhShareConfig`). Memory is
 * MAP_SHARED because the virtio-fs daemon (vhost-user) must map guest memory.
 */
export function clhTemplateConfig(machine: ClhMachine): VmConfig {
  return {
    payload: {
      kernel: guestKernel(machine.image, machine.vcpus),
      initramfs: machine.image.initramfs,
      cmdline: machine.cmdline,
    },
    cpus: { boot_vcpus: machine.vcpus, max_vcpus: machine.vcpus },
    memory: { size: machine.memoryMiB * MIB, shared: true },
    serial: { mode: 'File', file: CLH_CONSOLE_LOG },
    console: { mode: 'Off' },
    vsock: { cid: CLH_GUEST_CID, socket: CLH_VSOCK_SOCKET },
    // A hardware RNG fed from the host (see qemu-command.ts).
    rng: { src: '/dev/urandom' },
    watchdog: false,
  };
}

/** The guest kernel's command line under CH (KVM calibrates the TSC itself). */
export function clhGuestCmdline(): string {
  return 'console=ttyS0 panic=-1 reboot=t quiet';
}

/** A clone's share: virtio-fs served by the clone's own virtiofsd. */
export function clhShareConfig(tag: string, socket: string): FsConfig {
  return { tag, socket, num_queues: 1, queue_size: 1024, id: 'share0' };
}

/** Where `vm.snapshot` writes the paused template: a folder on the host. */
export function clhSnapshotConfig(
  snapshotDir: string,
): VmSnapshotConfig & { destination_url: string } {
  return { destination_url: `file://${snapshotDir}` };
}

export function clhRestoreConfig(
  snapshotDir: string,
  mode: RestoreConfig['memory_restore_mode'],
): RestoreConfig {
  return {
    source_url: `file://${snapshotDir}`,
    prefault: false,
    ...(mode === undefined ? {} : { memory_restore_mode: mode }),
  };
}

/** CH with only its API socket; the VM comes from `vm.create` or `vm.restore`. */
export function cloudHypervisorArgs(apiSocket: string): string[] {
  // CH's seccomp filters are on by default; said here so no build or wrapper turns them off.
  return ['--api-socket', `path=${apiSocket}`, '--seccomp', 'true'];
}

/**
 * virtiofsd (the Rust one) serving one export folder. `--cache never` so binds made into
 * the export after the guest mounted it are seen at once; `--announce-submounts` so the
 * guest sees those binds as separate mounts (distinct inode spaces, like 9p's
 * multidevs=remap); no sandbox, because its namespace would hide binds made later.
 */
export function virtiofsdArgs(socket: string, sharedDir: string): string[] {
  return [
    `--socket-path=${socket}`,
    `--shared-dir=${sharedDir}`,
    '--cache=never',
    '--announce-submounts',
    '--sandbox=none',
  ];
}
