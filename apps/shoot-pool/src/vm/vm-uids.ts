// The unprivileged users VMMs run as: one uid per VM, from a range nothing else on the
// node uses. Numeric only, with no passwd entries: nothing looks the names up (setpriv
// takes numbers, QEMU never asks who it is), and thousands of entries would only be
// clutter. A uid per VM rather than per tenant: a VM is started before its caller is
// known, and two VMs of different uids cannot signal, ptrace or read /proc of each other.
//
// What a VMM keeps: CAP_DAC_OVERRIDE alone, so it can reach its run directory, the
// snapshot's memory and the caller's volumes whoever owns them. It has no CAP_CHOWN,
// CAP_FOWNER, CAP_FSETID or CAP_MKNOD: a file it creates is its own uid's, it cannot give
// one away (to root) or make device nodes, and no_new_privs plus QEMU's seccomp sandbox
// keep it from gaining anything back.

export interface UidRange {
  first: number;
  count: number;
}

/** Far above every distribution's users and Kubernetes' user-namespace ranges (65536 × n). */
export const DEFAULT_VM_UIDS: UidRange = { first: 2_100_000_000, count: 65_536 };

/** Parses `FIRST-LAST` (inclusive). */
export function parseUidRange(text: string): UidRange {
  const match = /^(\d+)-(\d+)$/.exec(text.trim());
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (match === null || first < 1000 || last < first || last > 0xfffffffe) {
    throw new Error(
      `expected FIRST-LAST with 1000 <= FIRST <= LAST <= 4294967294, got ${JSON.stringify(text)}`,
    );
  }
  return { first, count: last - first + 1 };
}

/**
 * Hands out uids of the range, never one in use, and not the one just freed (a uid's
 * files from one VM are never mistaken for the next VM's): it walks the range round.
 */
export class VmUids {
  readonly #range: UidRange;
  readonly #inUse = new Set<number>();
  #next = 0;

  constructor(range: UidRange) {
    this.#range = range;
  }

  take(): number {
    for (let tried = 0; tried < this.#range.count; tried += 1) {
      const uid = this.#range.first + this.#next;
      this.#next = (this.#next + 1) % this.#range.count;
      if (!this.#inUse.has(uid)) {
        this.#inUse.add(uid);
        return uid;
      }
    }
    throw new Error(`all ${this.#range.count} VM uids are in use`);
  }

  release(uid: number): void {
    this.#inUse.delete(uid);
  }
}

/**
 * The argv that runs `binary` as `uid` (and gid) with no groups, CAP_DAC_OVERRIDE as its
 * only capability (also ambient, so it survives the exec) and no_new_privs. setpriv execs
 * in place: the VMM keeps the pid, and its argv still names its run directory.
 */
export function runAsVmUser(uid: number, binary: string, args: readonly string[]): string[] {
  return [
    `--reuid=${uid}`,
    `--regid=${uid}`,
    '--clear-groups',
    '--no-new-privs',
    '--inh-caps=-all,+dac_override',
    '--ambient-caps=-all,+dac_override',
    '--bounding-set=-all,+dac_override',
    '--',
    binary,
    ...args,
  ];
}
