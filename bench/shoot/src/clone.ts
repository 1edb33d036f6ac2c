// What the bench's restore measurements share: a snapshot of a template primed as the
// pool primes its own, a clone's share mounted where the pool mounts it, and a process's
// CPU time read from /proc.
import { readFileSync } from 'node:fs';
import {
  SHARE_TARGET,
  primeTemplate,
  type GuestImage,
  type QemuHypervisor,
  type VmSnapshot,
} from '@seed/shoot-pool';

export const MEMORY_MIB = 256;
/** The kernel's clock ticks in /proc's CPU times (USER_HZ). */
export const TICKS_PER_SECOND = 100;

type Clone = Awaited<ReturnType<QemuHypervisor['startClone']>>;

/** A template's snapshot as the pool takes it. */
export async function primedSnapshot(hv: QemuHypervisor, image: GuestImage): Promise<VmSnapshot> {
  const template = await hv.startTemplate({ image, memoryMiB: MEMORY_MIB, vcpus: 1 });
  await primeTemplate(template);
  return hv.snapshot(template);
}

/** Mounts the clone's share where the pool does, writable. */
export function mountShare(vm: Clone) {
  return vm.agent.mount({
    fstype: vm.share.fstype,
    source: vm.share.tag,
    target: SHARE_TARGET,
    readOnly: false,
  });
}

/** The pool's warm-up of a clone, as the bench measures it: mount the share, run `true`. */
export async function warmUp(vm: Clone): Promise<void> {
  await mountShare(vm);
  const first = await vm.agent.exec({ argv: ['true'], timeoutMs: 10_000 });
  if (first.exitCode !== 0) throw new Error(`the first command exited ${first.exitCode}`);
}

/** /proc/<pid>/stat's fields after the command name (field 3 on, so utime is [11]). */
export function statFields(pid: number | 'self'): number[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
}

/** CPU ms (utime + stime) of a process, read at once: onPhase is called synchronously. */
export function cpuMs(pid: number): number {
  const stat = statFields(pid);
  return ((stat[11]! + stat[12]!) * 1000) / TICKS_PER_SECOND;
}
