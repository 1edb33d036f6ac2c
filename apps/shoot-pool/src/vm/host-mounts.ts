// Host-side bind mounts for a VM's export folder. Binds let a warm clone receive a
// caller's folders at request time without touching the VMM: the guest has the share
// mounted already and sees a bind appear at once (9p with cache=none).
import { mountsUnder, readMounts } from '@seed/mount-table';
import { runHostCommand } from './host-command';

export class MountError extends Error {
  override readonly name = 'MountError';
}

async function mountCommand(argv: string[]): Promise<void> {
  const result = await runHostCommand(argv);
  if (result.code !== 0) {
    throw new MountError(`${argv.join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
  }
}

/**
 * Bind-mounts `source` onto `target`, read-only if asked; `recursive` takes the mounts
 * under `source` along (a closure view's per-path binds, each already read-only). The bind
 * is private: mounts made under it never propagate elsewhere, and the host's own mounts do
 * not propagate into it. One `mount` process does all of it (util-linux >= 2.27 applies
 * `--make-private` and `-o ro` after the bind, as a remount): each command is a round trip
 * on a shoot's path.
 */
export async function bindMount(
  source: string,
  target: string,
  readOnly: boolean,
  recursive = false,
): Promise<void> {
  await mountCommand([
    'mount',
    recursive ? '--make-rprivate' : '--make-private',
    recursive ? '--rbind' : '--bind',
    ...(readOnly ? ['-o', 'ro'] : []),
    source,
    target,
  ]);
  if (readOnly && !(await mountedReadOnly(target))) {
    // The bind happened but its read-only remount did not: never leave it writable.
    await unmount(target).catch(() => undefined);
    throw new MountError(`mount --bind -o ro ${source} ${target} left it writable`);
  }
}

/** Whether the topmost mount at `point` is read-only (its per-mount options say `ro`). */
async function mountedReadOnly(point: string): Promise<boolean> {
  const top = (await readMounts()).filter((mount) => mount.point === point).at(-1);
  return top?.options.includes('ro') ?? false;
}

/**
 * Unmounts `target`; a mount that is still busy is detached lazily instead (it goes away
 * when its last user does). The VMM is killed before this runs, so busy is rare.
 */
export async function unmount(target: string): Promise<void> {
  const result = await runHostCommand(['umount', '--recursive', target]);
  if (result.code === 0) return;
  const lazy = await runHostCommand(['umount', '--lazy', target]);
  if (lazy.code !== 0) {
    throw new MountError(
      `umount ${target} failed: ${result.stderr.trim()} / ${lazy.stderr.trim()}`,
    );
  }
}

/**
 * Unmounts `targets` in order with one `umount` command (a VM's teardown runs beside the
 * next shoot); whatever it left mounted is retried one by one,
 * lazily if still busy.
 */
export async function unmountAll(targets: readonly string[]): Promise<void> {
  if (targets.length === 0) return;
  // --recursive: a closure view's bind carries a mount per store path under it.
  const result = await runHostCommand(['umount', '--recursive', ...targets]);
  if (result.code === 0) return;
  const left = new Set(await mountsUnder('/'));
  const failed: string[] = [];
  for (const target of targets) {
    // Keep going: one stuck mount must not keep the others mounted.
    if (left.has(target))
      await unmount(target).catch((error: unknown) => failed.push(String(error)));
  }
  if (failed.length > 0) throw new MountError(failed.join('; '));
}
