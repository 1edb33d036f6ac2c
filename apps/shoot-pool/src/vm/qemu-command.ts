// The QEMU command line of a shoot VM, as measured on the project's machines
// (/work/shared/RUNTIME-NOTES.md, "microVMs (QEMU)"). Pure, so tests pin it down; a
// template and its clones must get the same machine and devices, in the same order, or
// the clone's migration stream will not load.

export type Accel = 'kvm' | 'tcg';

export interface QemuMachine {
  accel: Accel;
  memoryMiB: number;
  vcpus: number;
  kernel: string;
  initramfs: string;
  cmdline: string;
  /** Guest memory lives in this file (under /dev/shm). */
  ramFile: string;
  /**
   * Template: MAP_SHARED, so the saved memory is the file itself. Clone: MAP_PRIVATE, a
   * copy-on-write view of the snapshot's file that never writes back to it.
   */
  shareRam: boolean;
  /** Wait for a migration stream instead of booting (a clone). */
  incoming: boolean;
  qmpSocket: string;
  agentSocket: string;
  consoleLog: string;
  pidFile: string;
  exportDir: string;
  shareTag: string;
}

export function qemuArgs(machine: QemuMachine): string[] {
  const size = `${machine.memoryMiB}M`;
  const q = optionValue;
  const args = [
    // Nothing implicit: no default devices, no config files, no display, no network.
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    // A guest that panics or reboots ends the VMM, which the driver sees as an exit.
    '-no-reboot',
    '-accel',
    machine.accel,
    // Under TCG, QEMU's default qemu64 CPU lacks ARAT (an APIC timer that keeps running
    // in idle): the guest kernel then cannot use its only clock event device in one-shot
    // mode and ticks at HZ (250/s) forever, idle or not, each tick an exit from translated
    // code. With ARAT it runs tickless (NO_HZ_IDLE; see guestCmdline for highres=off).
    '-cpu',
    machine.accel === 'kvm' ? 'host' : 'qemu64,arat=on',
    // No PIT under TCG: the guest never uses it (the TSC frequency comes from
    // tsc_early_khz, the tick from the local APIC), but QEMU kept its channel 0 counting in
    // the firmware's square-wave mode, waking the main loop ~36 times a second per VM.
    '-M',
    `microvm,pit=${onOff(machine.accel === 'kvm')},rtc=on,memory-backend=mem`,
    '-m',
    size,
    '-smp',
    String(machine.vcpus),
    '-object',
    `memory-backend-file,id=mem,size=${size},mem-path=${q(machine.ramFile)},share=${onOff(machine.shareRam)}`,
    '-kernel',
    machine.kernel,
    '-initrd',
    machine.initramfs,
    '-append',
    machine.cmdline,
    '-chardev',
    `file,id=console,path=${q(machine.consoleLog)}`,
    '-serial',
    'chardev:console',
    // The agent's channel: vsock needs /dev/vhost-vsock, which these hosts lack.
    '-chardev',
    `socket,id=agent,path=${q(machine.agentSocket)},server=on,wait=off`,
    '-device',
    'virtio-serial-device',
    '-device',
    'virtserialport,chardev=agent,name=agent',
    // A hardware RNG fed from the host: the guest kernel keeps mixing it into its pool, so
    // clones of one snapshot drift apart even without the agent's reseed after a restore.
    '-object',
    'rng-random,id=rng0,filename=/dev/urandom',
    '-device',
    'virtio-rng-device,rng=rng0',
    // The share. multidevs=remap: binds from other host filesystems would otherwise
    // collide on inode numbers and a guest could read the wrong file.
    '-fsdev',
    `local,id=fs0,path=${q(machine.exportDir)},security_model=none,multidevs=remap`,
    '-device',
    `virtio-9p-device,fsdev=fs0,mount_tag=${q(machine.shareTag)}`,
    '-qmp',
    `unix:${q(machine.qmpSocket)},server=on,wait=off`,
    '-pidfile',
    machine.pidFile,
    // QEMU's seccomp filter: no obsolete system calls, no setuid/setgid, no fork or exec,
    // no scheduler or resource changes. A guest that breaks into QEMU is still this uid
    // (vm-uids.ts) with nothing it can spawn or become.
    '-sandbox',
    'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
  ];
  if (machine.incoming) args.push('-incoming', 'defer');
  return args;
}

/**
 * The guest kernel's command line. `tsc_early_khz` is required: without it the microvm
 * machine hangs at random under TCG while calibrating the TSC. Under TCG, `highres=off`
 * keeps the guest's timers on the tick's (4 ms) granularity, as they were before the CPU
 * had ARAT (qemuArgs): tickless idle without high-resolution timers reprogramming the
 * emulated APIC timer for every event took more CPU per restore and warm-up (334 against
 * 273 ms of QEMU CPU, mean of 12 clones each, bench/shoot's restore profile).
 */
export function guestCmdline(tscKhz: number, accel: Accel): string {
  const base = `console=ttyS0 panic=-1 reboot=t quiet tsc_early_khz=${tscKhz} tsc=reliable`;
  return accel === 'kvm' ? base : `${base} highres=off`;
}

/**
 * The host TSC frequency in kHz: sysfs's tsc_freq_khz where the kernel exposes it, else
 * the first "cpu MHz" of /proc/cpuinfo.
 */
export function hostTscKhz(cpuinfo: string, sysfsKhz?: string): number {
  const fromSysfs = Number(sysfsKhz?.trim());
  if (Number.isInteger(fromSysfs) && fromSysfs > 0) return fromSysfs;
  const match = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo);
  const mhz = match === null ? NaN : Number(match[1]);
  if (!Number.isFinite(mhz) || mhz <= 0) throw new Error('no "cpu MHz" in /proc/cpuinfo');
  return Math.round(mhz * 1000);
}

/** A value inside a QEMU option list: a comma would start the next option unless doubled. */
export function optionValue(value: string): string {
  return value.replaceAll(',', ',,');
}

function onOff(value: boolean): string {
  return value ? 'on' : 'off';
}
