import { ClhHypervisor } from './clh.hypervisor';
import type { Hypervisor } from './hypervisor';
import { findQemu } from './qemu-binary';
import { QemuHypervisor } from './qemu.hypervisor';
import type { VmLog } from './vm-log';
import type { UidRange } from './vm-uids';

/**
 * The VMM the pool's microVMs run under (SEED_HYPERVISOR). QEMU is the default, the one
 * every development machine has (TCG without KVM); Cloud Hypervisor is production's
 * (deploy/) and needs KVM.
 */
export type HypervisorChoice =
  | { kind: 'qemu'; accel: 'auto' | 'kvm' | 'tcg'; vmUids: UidRange; binary?: string }
  | { kind: 'cloud-hypervisor'; binary: string; virtiofsdBinary: string; vmUids: UidRange };

/**
 * The one place that knows both drivers: everything after it sees a Hypervisor. QEMU's
 * binary, unless given (SEED_QEMU_BINARY), is scripts/qemu's build.
 */
export async function selectHypervisor(
  choice: HypervisorChoice,
  runRoot: string,
  log: VmLog,
): Promise<Hypervisor> {
  return choice.kind === 'qemu'
    ? new QemuHypervisor({
        runRoot,
        qemuBinary: await findQemu(choice.binary),
        accel: choice.accel,
        vmUids: choice.vmUids,
        log,
      })
    : new ClhHypervisor({
        runRoot,
        clhBinary: choice.binary,
        virtiofsdBinary: choice.virtiofsdBinary,
        vmUids: choice.vmUids,
        log,
      });
}
