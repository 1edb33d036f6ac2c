import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { GuestImage } from '../vm/hypervisor';

/** scripts/guest-image, the same depth from src/pool and dist/pool. */
export const GUEST_IMAGE_SCRIPT = path.resolve(__dirname, '../../../../scripts/guest-image');
/**
 * A cold build downloads the kernel package, builds two kernels (~10 min on two idle
 * cores) and compiles the agent.
 */
const BUILD_TIMEOUT_MS = 30 * 60_000;

/** The guest image in `dir`, or the one scripts/guest-image builds (or finds cached). */
export async function findGuestImage(dir?: string): Promise<GuestImage> {
  const folder = dir ?? (await buildGuestImage());
  const image = {
    kernel: path.join(folder, 'vmlinux'),
    uniprocessorKernel: path.join(folder, 'vmlinux-up'),
    initramfs: path.join(folder, 'initramfs.cpio.gz'),
  };
  for (const file of Object.values(image)) {
    await access(file).catch(() => {
      throw new Error(`guest image incomplete: ${file} is missing`);
    });
  }
  return image;
}

function buildGuestImage(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      GUEST_IMAGE_SCRIPT,
      [],
      { timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error !== null) {
          reject(new Error(`scripts/guest-image failed: ${error.message}\n${stderr}`));
          return;
        }
        const folder = stdout.trim().split('\n').pop();
        if (folder === undefined || folder === '')
          reject(new Error('scripts/guest-image printed no folder'));
        else resolve(folder);
      },
    );
  });
}
