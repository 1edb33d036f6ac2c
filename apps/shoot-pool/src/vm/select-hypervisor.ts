import { ClhHypervisor } from './clh.hypervisor';
import type { Hypervisor } from './hypervisor';
import { QemuHypervisor } from './qemu.hypervisor';
import type { VmLog } from './vm-log';

/**
 * The VMM the pool's microVMs run under (SEED_HYPERVISOR). QEMU is the default, the one
 * every development machine has (TCG without KVM); Cloud Hypervisor is production's
 * (deploy/) and needs KVM.
 */
export type HypervisorChoice =
  | { kind: 'qemu'; accel: 'auto' | 'kvm' | 'tcg' }
  | { kind: 'cloud-hypervisor'; binary: string; virtiofsdBinary: string };

/** The one place that knows both drivers: everything after it sees a Hypervisor. */
export function selectHypervisor(
  choice: HypervisorChoice,
  runRoot: string,
  log: VmLog,
): Hypervisor {
  return choice.kind === 'qemu'
    ? new QemuHypervisor({ runRoot, accel: choice.accel, log })
    : new ClhHypervisor({
        runRoot,
        clhBinary: choice.binary,
        virtiofsdBinary: choice.virtiofsdBinary,
        log,
      });
}
