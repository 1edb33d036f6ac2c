// Test fixtures for real microVMs: the guest image (built and cached by
// scripts/guest-image, or taken from SEED_GUEST_DIR) and whether QEMU is installed.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { GuestImage } from '../src/vm/hypervisor';

const SCRIPT = path.resolve(__dirname, '../../../scripts/guest-image');

/** A cold build downloads the kernel package and compiles the agent: minutes, not seconds. */
export const GUEST_IMAGE_TIMEOUT_MS = 10 * 60_000;

export async function guestImage(): Promise<GuestImage> {
  const dir = process.env.SEED_GUEST_DIR ?? (await buildGuestImage());
  const image = {
    kernel: path.join(dir, 'vmlinux'),
    initramfs: path.join(dir, 'initramfs.cpio.gz'),
  };
  for (const file of Object.values(image)) {
    if (!existsSync(file)) throw new Error(`guest image incomplete: ${file} is missing`);
  }
  return image;
}

function buildGuestImage(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      SCRIPT,
      [],
      { timeout: GUEST_IMAGE_TIMEOUT_MS, maxBuffer: 16 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error !== null) {
          reject(new Error(`scripts/guest-image failed: ${error.message}\n${stderr}`));
          return;
        }
        const dir = stdout.trim().split('\n').pop();
        if (dir === undefined || dir === '')
          reject(new Error('scripts/guest-image printed no directory'));
        else resolve(dir);
      },
    );
  });
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
