// Test fixtures for real microVMs: the guest image (built and cached by
// scripts/guest-image, or taken from SEED_GUEST_DIR) and whether QEMU is installed.
import { execFileSync } from 'node:child_process';
import { findGuestImage } from '../src/pool/guest-image';
import type { GuestImage } from '../src/vm/hypervisor';

/** A cold build downloads the kernel package, builds two kernels and compiles the agent. */
export const GUEST_IMAGE_TIMEOUT_MS = 30 * 60_000;

export function guestImage(): Promise<GuestImage> {
  return findGuestImage(process.env.SEED_GUEST_DIR);
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
