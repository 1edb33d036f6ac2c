// Host-side bind mounts for a VM's export folder. Binds let a warm clone receive a
// caller's folders at request time without touching the VMM: the guest has the share
// mounted already and sees a bind appear at once (9p with cache=none).
//
// They are made by seed-mount (src/native/seed-mount.c), a Node-API addon the package's
// build makes into dist/: the mount(2) and umount2(2) syscalls from the daemon itself.
// A bind takes microseconds, so it runs on the event loop; an unmount may detach a closure
// view's hundred mounts, so it runs on libuv's thread pool.
import path from 'node:path';

export class MountError extends Error {
  override readonly name = 'MountError';

  constructor(
    message: string,
    /** The errno and the step that failed (`source`, `bind`, ...), when the syscalls ran. */
    readonly failure?: { errno: number; step: string },
  ) {
    super(message);
  }
}

/** dist/seed-mount.node, the same depth from src/vm and dist/vm (tests run the sources). */
export const MOUNT_ADDON = path.resolve(__dirname, '../../dist/seed-mount.node');

/** What a call answers: null, or the step that failed, its errno and strerror. */
type Failure = { errno: number; step: string; reason: string } | null;

interface MountAddon {
  bind(source: string, target: string, flags: string): Failure;
  umount(target: string): Promise<Failure>;
}

let addon: MountAddon | undefined;

function mountAddon(): MountAddon {
  if (addon === undefined) {
    const module = { exports: {} as MountAddon };
    try {
      process.dlopen(module, MOUNT_ADDON);
    } catch (error) {
      throw new MountError(
        `cannot load ${MOUNT_ADDON} (the shoot pool's build makes it with cc): ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    addon = module.exports;
  }
  return addon;
}

function check(description: string, failure: Failure): void {
  if (failure === null) return;
  const { errno, step, reason } = failure;
  throw new MountError(`${description} failed: ${errno} ${step}: ${reason}`, { errno, step });
}

export interface HostBindOptions {
  /** Checked: a bind asked to be read-only is never left writable. */
  readOnly: boolean;
  /** Take the mounts under `source` along (a closure view's per-path binds). */
  recursive?: boolean;
  /**
   * Both must be directories, else MountError with `failure.step` `source` or `target`
   * (and ENOENT or ENOTDIR) and nothing mounted.
   */
  directories?: boolean;
}

/**
 * Bind-mounts `source` onto `target`, synchronously (microseconds; a closure view's
 * recursive bind of a hundred mounts ~0.3 ms). The bind is private: mounts made under it
 * never propagate elsewhere, and the host's own mounts do not propagate into it.
 */
export function bindMount(
  source: string,
  target: string,
  { readOnly, recursive = false, directories = false }: HostBindOptions,
): void {
  const flags = `${readOnly ? 'r' : ''}${recursive ? 'R' : ''}${directories ? 'd' : ''}`;
  check(`bind ${source} onto ${target}`, mountAddon().bind(source, target, flags));
}

/**
 * Unmounts `target` with whatever is mounted under it; a mount that is still busy is
 * detached lazily instead (it goes away when its last user does). The VMM is killed
 * before this runs, so busy is rare.
 */
export async function unmount(target: string): Promise<void> {
  check(`umount ${target}`, await mountAddon().umount(target));
}

/**
 * Unmounts `targets` in order (a VM's teardown, innermost first); keeps going past a
 * failure, so one stuck mount does not keep the others mounted.
 */
export async function unmountAll(targets: readonly string[]): Promise<void> {
  const failed: string[] = [];
  for (const target of targets) {
    await unmount(target).catch((error: unknown) => failed.push(String(error)));
  }
  if (failed.length > 0) throw new MountError(failed.join('; '));
}
