import { ClhHypervisor } from './clh.hypervisor';
import type { Hypervisor } from './hypervisor';
import { QemuHypervisor } from './qemu.hypervisor';
import type { VmLog } from './vm-log';
import type { UidRange } from './vm-uids';

/**
 * The VMM the pool's microVMs run under (SEED_HYPERVISOR). QEMU is the default, the one
 * every development machine has (TCG without KVM); Cloud Hypervisor is production's
 * (deploy/) and needs KVM.
 */
export type HypervisorChoice =
  | { kind: 'qemu'; accel: 'auto' | 'kvm' | 'tcg'; vmUids: UidRange }
  | { kind: 'cloud-hypervisor'; binary: string; virtiofsdBinary: string; vmUids: UidRange };

/** The one place that knows both drivers: everything after it sees a Hypervisor. */
export function selectHypervisor(
  choice: HypervisorChoice,
  runRoot: string,
  log: VmLog,
): Hypervisor {
  return choice.kind === 'qemu'
    ? new QemuHypervisor({ runRoot, accel: choice.accel, vmUids: choice.vmUids, log })
    : new ClhHypervisor({
        runRoot,
        clhBinary: choice.binary,
        virtiofsdBinary: choice.virtiofsdBinary,
        vmUids: choice.vmUids,
        log,
      });
}
