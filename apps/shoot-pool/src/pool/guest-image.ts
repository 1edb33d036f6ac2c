import { access } from 'node:fs/promises';
import path from 'node:path';
import { buildScript, cachedBuild } from '../vm/cached-build';
import type { GuestImage } from '../vm/hypervisor';

const GUEST_IMAGE_SCRIPT = buildScript('guest-image');
/**
 * A cold build downloads the kernel package, builds two kernels (~10 min on two idle
 * cores) and compiles the agent.
 */
const BUILD_TIMEOUT_MS = 30 * 60_000;

/** The guest image in `dir`, or the one scripts/guest-image builds (or finds cached). */
export async function findGuestImage(dir?: string): Promise<GuestImage> {
  const folder = dir ?? (await cachedBuild(GUEST_IMAGE_SCRIPT, BUILD_TIMEOUT_MS));
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
