// Test fixtures for real microVMs: the guest image (built and cached by
// scripts/guest-image, or taken from SEED_GUEST_DIR), the QEMU the pool runs (scripts/qemu,
// or SEED_QEMU_BINARY) and whether QEMU is installed.
import { execFileSync } from 'node:child_process';
import { findGuestImage } from '../src/pool/guest-image';
import type { GuestImage } from '../src/vm/hypervisor';
import { findQemu } from '../src/vm/qemu-binary';

/** A cold build downloads the kernel package, builds two kernels and compiles the agent. */
export const GUEST_IMAGE_TIMEOUT_MS = 30 * 60_000;

export function guestImage(): Promise<GuestImage> {
  return findGuestImage(process.env.SEED_GUEST_DIR);
}

/** The qemu-system-x86_64 the pool runs, as the daemon finds it. */
export function qemuBinary(): Promise<string> {
  return findQemu(process.env.SEED_QEMU_BINARY);
}

/** Why VM tests cannot run here, or undefined when they can (QEMU is installed). */
export function qemuMissing(binary = 'qemu-system-x86_64'): string | undefined {
  try {
    execFileSync(binary, ['--version'], { stdio: 'ignore', timeout: 10_000 });
    return undefined;
  } catch {
    return `${binary} is not installed: VM tests skipped (apt-get install qemu-system-x86)`;
  }
}
