// A VM that cannot start must leave nothing behind: every resource acquired before the
// failure is undone by its cleanup stack. Runs for both drivers without their VMMs.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { ClhHypervisor } from '../src/vm/clh.hypervisor';
import { mountsUnder } from '@seed/mount-table';
import { VmError, type Hypervisor } from '../src/vm/hypervisor';
import { QemuHypervisor } from '../src/vm/qemu.hypervisor';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'shoot-fail-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const image = {
  kernel: '/nonexistent/vmlinux',
  uniprocessorKernel: '/nonexistent/vmlinux-up',
  initramfs: '/nonexistent/initramfs',
};

const drivers: [string, (runRoot: string) => Hypervisor][] = [
  [
    'QEMU',
    (runRoot) =>
      new QemuHypervisor({
        runRoot,
        accel: 'tcg',
        qemuBinary: '/nonexistent/qemu',
        tscKhz: 1_000_000,
      }),
  ],
  [
    'Cloud Hypervisor',
    (runRoot) => new ClhHypervisor({ runRoot, clhBinary: '/nonexistent/cloud-hypervisor' }),
  ],
];

describe.each(drivers)('%s driver', (_name, make) => {
  it('fails to start with a spawn error and leaves no files or mounts', async () => {
    const hv = make(path.join(root, 'run'));
    const error = await hv
      .startTemplate({ id: 'broken', image, memoryMiB: 128, vcpus: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VmError);
    expect(error).toMatchObject({ kind: 'spawn', vmId: 'broken', retryable: false });
    expect(await mountsUnder(root)).toEqual([]);
    expect(await readdir(path.join(root, 'run', 'vms'))).toEqual([]);
    expect(existsSync(path.join(root, 'run', 'vms', 'broken'))).toBe(false);
  });

  it('refuses bad specs before acquiring anything', async () => {
    const hv = make(path.join(root, 'run'));
    await expect(
      hv.startTemplate({ id: '../escape', image, memoryMiB: 128, vcpus: 1 }),
    ).rejects.toMatchObject({ kind: 'invalid' });
    expect(existsSync(path.join(root, 'run'))).toBe(false);
  });
});
