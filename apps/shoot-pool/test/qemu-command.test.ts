import { describe, expect, it } from '@jest/globals';
import {
  guestCmdline,
  hostTscKhz,
  optionValue,
  qemuArgs,
  type QemuMachine,
} from '../src/vm/qemu-command';

const template: QemuMachine = {
  accel: 'tcg',
  memoryMiB: 256,
  vcpus: 2,
  kernel: '/guest/vmlinux',
  initramfs: '/guest/initramfs.cpio.gz',
  cmdline: guestCmdline(2_299_998, 'tcg'),
  ramFile: '/dev/shm/seed-shoot-x-tpl.ram',
  shareRam: true,
  incoming: false,
  qmpSocket: '/run/vms/tpl/qmp.sock',
  agentSocket: '/run/vms/tpl/agent.sock',
  consoleLog: '/run/vms/tpl/console.log',
  pidFile: '/run/vms/tpl/qemu.pid',
  exportDir: '/run/vms/tpl/export',
  shareTag: 'shoot',
};

function option(args: string[], flag: string): string[] {
  return args.flatMap((arg, i) => (args[i - 1] === flag ? [arg] : []));
}

describe('qemuArgs', () => {
  it('builds the measured microvm command line', () => {
    const args = qemuArgs(template);
    expect(args.slice(0, 6)).toEqual([
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-no-reboot',
      '-accel',
    ]);
    expect(option(args, '-accel')).toEqual(['tcg']);
    // ARAT lets the guest run tickless under TCG (see qemu-command.ts).
    expect(option(args, '-cpu')).toEqual(['qemu64,arat=on']);
    // No PIT under TCG: nothing in the guest uses it, and QEMU would keep it ticking.
    expect(option(args, '-M')).toEqual(['microvm,pit=off,rtc=on,memory-backend=mem']);
    expect(option(args, '-object')).toEqual([
      'memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/seed-shoot-x-tpl.ram,share=on',
      'rng-random,id=rng0,filename=/dev/urandom',
    ]);
    expect(option(args, '-device')).toEqual([
      'virtio-serial-device',
      'virtserialport,chardev=agent,name=agent',
      'virtio-rng-device,rng=rng0',
      'virtio-9p-device,fsdev=fs0,mount_tag=shoot',
    ]);
    expect(option(args, '-fsdev')).toEqual([
      'local,id=fs0,path=/run/vms/tpl/export,security_model=none,multidevs=remap',
    ]);
    expect(option(args, '-append')).toEqual([
      'console=ttyS0 panic=-1 reboot=t quiet tsc_early_khz=2299998 tsc=reliable highres=off',
    ]);
    // Under QEMU's seccomp sandbox, with every optional restriction on.
    expect(option(args, '-sandbox')).toEqual([
      'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
    ]);
    // No network, no default devices, and no way to get one implicitly.
    expect(args.join(' ')).not.toMatch(/-net|-nic|netdev|virtio-net/);
    expect(args).not.toContain('-incoming');
  });

  it('gives a clone the same machine, private memory and a deferred incoming stream', () => {
    const clone = qemuArgs({ ...template, shareRam: false, incoming: true });
    const base = qemuArgs(template);
    expect(clone.slice(-2)).toEqual(['-incoming', 'defer']);
    const differences = clone.slice(0, -2).filter((arg, i) => arg !== base[i]);
    expect(differences).toEqual([
      'memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/seed-shoot-x-tpl.ram,share=off',
    ]);
  });

  it('uses the host CPU under KVM', () => {
    const args = qemuArgs({ ...template, accel: 'kvm' });
    expect(option(args, '-accel')).toEqual(['kvm']);
    expect(option(args, '-cpu')).toEqual(['host']);
    expect(option(args, '-M')).toEqual(['microvm,pit=on,rtc=on,memory-backend=mem']);
    expect(guestCmdline(2_299_998, 'kvm')).toBe(
      'console=ttyS0 panic=-1 reboot=t quiet tsc_early_khz=2299998 tsc=reliable',
    );
  });

  it('escapes commas in option values', () => {
    expect(optionValue('/a,b/c')).toBe('/a,,b/c');
    const args = qemuArgs({ ...template, exportDir: '/x,y' });
    expect(option(args, '-fsdev')[0]).toContain('path=/x,,y,');
  });
});

describe('hostTscKhz', () => {
  it('prefers sysfs, else reads cpu MHz', () => {
    expect(hostTscKhz('cpu MHz\t\t: 2299.998\n', '2300000\n')).toBe(2_300_000);
    expect(hostTscKhz('processor\t: 0\ncpu MHz\t\t: 2299.998\n')).toBe(2_299_998);
    expect(() => hostTscKhz('processor\t: 0\n')).toThrow();
  });
});
