// What other workspace packages (bench/shoot) may use of the shoot pool: the daemon, its
// configuration and the VM layer it stands on.
export { loadShootPoolConfig } from './config';
export type { ShootPoolConfig } from './config';
export { createShootPoolApp } from './shoot-pool.app';
export type { ShootPoolApp, ShootPoolAppOptions } from './shoot-pool.app';
export { findGuestImage } from './pool/guest-image';
export { SHARE_TARGET, STORE_POINT, VOLUME_POINTS, primeTemplate } from './pool/pool';
export type {
  CloneVm,
  GuestImage,
  Hypervisor,
  MicroVm,
  RestorePhase,
  VmSnapshot,
} from './vm/hypervisor';
export { QemuHypervisor } from './vm/qemu.hypervisor';
export { findQemu } from './vm/qemu-binary';
export { processesReferencing } from './vm/vmm-process';
