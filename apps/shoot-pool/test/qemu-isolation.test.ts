// What a shoot can leave on the host through its share, on real microVMs (QEMU, TCG here):
// QEMU runs as an unprivileged uid of its own under its seccomp sandbox, and serves 9p in
// `security_model=none` (qemu-command.ts): a guest's chown never reaches the host, so a
// setuid bit lands only on a file owned by that unprivileged uid, and device nodes cannot
// be made at all. What the guest writes has the same owner and mode on both sides.
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { GuestImage, CloneVm, VmSnapshot } from '../src/vm/hypervisor';
import { QemuHypervisor } from '../src/vm/qemu.hypervisor';
import { GUEST_IMAGE_TIMEOUT_MS, guestImage, qemuBinary, qemuMissing } from './guest-image';

const missing = qemuMissing();
if (missing !== undefined) console.warn(missing);
const describeVm = missing === undefined ? describe : describe.skip;

/** A user of the instance: not root, and not QEMU's uid. */
const PARENT_UID = 1000;

describeVm("a shoot's share seen from the host", () => {
  let root: string;
  let volume: string;
  let image: GuestImage;
  let hv: QemuHypervisor;
  let snapshot: VmSnapshot;
  let vm: CloneVm;

  const sh = async (script: string) => {
    const result = await vm.agent.exec({ argv: ['sh', '-c', script], timeoutMs: 20_000 });
    return { ...result, out: result.stdout.toString(), err: result.stderr.toString() };
  };

  beforeAll(async () => {
    image = await guestImage();
    root = await mkdtemp(path.join(tmpdir(), 'shoot-share-'));
    // The caller's volume: a root-owned folder, as the node makes them.
    volume = path.join(root, 'volume');
    await mkdir(volume);
    await chmod(root, 0o755);
    hv = new QemuHypervisor({
      runRoot: path.join(root, 'run'),
      qemuBinary: await qemuBinary(),
      accel: 'tcg',
    });
    snapshot = await hv.snapshot(await hv.startTemplate({ image, memoryMiB: 256, vcpus: 1 }));
    vm = await hv.startClone(snapshot, { mountPoints: ['vol0'] });
    await vm.agent.mount({
      fstype: '9p',
      source: vm.share.tag,
      target: '/run/shoot',
      readOnly: false,
    });
    vm.bindIntoExport(volume, 'vol0', { readOnly: false });
  }, GUEST_IMAGE_TIMEOUT_MS);

  afterAll(async () => {
    await vm?.destroy();
    await snapshot?.destroy();
    if (hv !== undefined) await hv.reapOrphans();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('runs QEMU as an unprivileged uid of its own, with one capability, under seccomp', async () => {
    const status = await readFile(`/proc/${vm.pid}/status`, 'utf8');
    const field = (name: string) =>
      new RegExp(`^${name}:[ \\t]*(.*?)[ \\t]*$`, 'm').exec(status)?.[1];
    const [uid] = field('Uid')!.split(/\s+/);
    expect(Number(uid)).toBeGreaterThanOrEqual(2_100_000_000);
    expect(field('Groups')).toBe('');
    expect(field('CapEff')).toBe('0000000000000002'); // CAP_DAC_OVERRIDE
    expect(field('NoNewPrivs')).toBe('1');
    expect(field('Seccomp')).toBe('2'); // filter mode
  });

  it("attack: a guest that reaches QEMU finds no device model but the pool's and microvm's own", async () => {
    const qemu = await qemuBinary();
    const help = async (what: string) =>
      (await promisify(execFile)(qemu, [what, 'help'], { encoding: 'utf8' })).stdout;
    // `-device help` lists device types by category; CPU models are not devices a guest
    // drives.
    const devices = (await help('-device'))
      .split('\n\n')
      .filter((section) => !section.startsWith('CPU devices:'))
      .flatMap((section) => [...section.matchAll(/^name "([^"]+)"/gm)].map((match) => match[1]))
      .sort();
    // The pool's (qemu-command.ts): the console's serial port and the virtio-mmio serial
    // (with its console and port types), RNG and 9p devices. The rest is what microvm
    // selects: its RTC, and for its `pcie=on` and `usb=on`, which the pool never sets,
    // PCIe bridges and USB devices.
    expect(devices).toEqual([
      'isa-serial',
      'mc146818rtc',
      'pci-bridge',
      'pci-bridge-seat',
      'usb-hub',
      'usb-kbd',
      'usb-mouse',
      'usb-tablet',
      'virtconsole',
      'virtio-9p-device',
      'virtio-rng-device',
      'virtio-serial-device',
      'virtserialport',
    ]);
    expect((await help('-machine')).match(/^\S+(?=\s)/gm)).toEqual([
      'Supported',
      'microvm',
      'none',
    ]);
  });

  it('attack: a setuid file made in a shoot is not a root-owned setuid file on the host', async () => {
    const made = await sh(
      'cp /bin/busybox /run/shoot/vol0/suid; chown 0:0 /run/shoot/vol0/suid; chmod 4755 /run/shoot/vol0/suid; stat -c "%u %a" /run/shoot/vol0/suid',
    );
    const host = await lstat(path.join(volume, 'suid'));
    console.log(
      `setuid attempt: guest sees "${made.out.trim()}" (${made.err.trim()}); host uid ${host.uid} mode ${(host.mode & 0o7777).toString(8)}`,
    );
    expect(host.uid === 0 && (host.mode & 0o4000) !== 0).toBe(false);
    expect(host.uid).not.toBe(0);
  });

  it('attack: a device node made in a shoot does not appear on the host', async () => {
    const made = await sh(
      'mknod /run/shoot/vol0/mem c 1 1; mknod /run/shoot/vol0/disk b 8 0; ls -ln /run/shoot/vol0',
    );
    const found: string[] = [];
    for (const name of ['mem', 'disk']) {
      const stat = await lstat(path.join(volume, name)).catch(() => undefined);
      if (stat !== undefined) {
        found.push(
          `${name}: ${stat.isCharacterDevice() ? 'char' : stat.isBlockDevice() ? 'block' : 'other'}`,
        );
      }
    }
    console.log(`mknod attempt: guest said "${made.err.trim()}"; host has [${found.join(', ')}]`);
    expect(found.filter((entry) => /char|block/.test(entry))).toEqual([]);
  });

  it('keeps owner and mode equal on both sides of a file a shoot writes, and the parent reads it', async () => {
    const made = await sh(
      'echo from-the-shoot > /run/shoot/vol0/note; stat -c "%u %g %a" /run/shoot/vol0/note',
    );
    const host = await lstat(path.join(volume, 'note'));
    expect(made.out.trim()).toBe(`${host.uid} ${host.gid} ${(host.mode & 0o7777).toString(8)}`);
    // The parent instance's user (not root) reads it on the host.
    const { stdout } = await promisify(execFile)('setpriv', [
      `--reuid=${PARENT_UID}`,
      `--regid=${PARENT_UID}`,
      '--clear-groups',
      'cat',
      path.join(volume, 'note'),
    ]);
    expect(stdout).toBe('from-the-shoot\n');
  });
});
