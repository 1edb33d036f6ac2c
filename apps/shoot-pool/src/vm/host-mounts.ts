// Host-side bind mounts for a VM's export folder. Binds let a warm clone receive a
// caller's folders at request time without touching the VMM: the guest has the share
// mounted already and sees a bind appear at once (9p with cache=none).
import { readFile, rm } from 'node:fs/promises';
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
 * Bind-mounts `source` onto `target`, read-only if asked. The bind is private: mounts made
 * under it never propagate elsewhere, and the host's own mounts do not propagate into it.
 * One `mount` process does all of it (util-linux >= 2.27 applies `--make-private` and
 * `-o ro` after the bind, as a remount): a spawn costs ~5 ms, on a shoot's path.
 */
export async function bindMount(source: string, target: string, readOnly: boolean): Promise<void> {
  await mountCommand([
    'mount',
    '--make-private',
    '--bind',
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
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  let readOnly = false;
  for (const line of table.split('\n')) {
    const fields = line.split(' ');
    if (fields[4] !== undefined && unescapeMountPath(fields[4]) === point) {
      readOnly = (fields[5] ?? '').split(',').includes('ro'); // the last one is the top
    }
  }
  return readOnly;
}

/**
 * Unmounts `target`; a mount that is still busy is detached lazily instead (it goes away
 * when its last user does). The VMM is killed before this runs, so busy is rare.
 */
export async function unmount(target: string): Promise<void> {
  const result = await runHostCommand(['umount', target]);
  if (result.code === 0) return;
  const lazy = await runHostCommand(['umount', '--lazy', target]);
  if (lazy.code !== 0) {
    throw new MountError(
      `umount ${target} failed: ${result.stderr.trim()} / ${lazy.stderr.trim()}`,
    );
  }
}

/**
 * Unmounts `targets` in order with one `umount` process (a spawn costs ~4 ms, and a VM's
 * teardown runs beside the next shoot); whatever it left mounted is retried one by one,
 * lazily if still busy.
 */
export async function unmountAll(targets: readonly string[]): Promise<void> {
  if (targets.length === 0) return;
  const result = await runHostCommand(['umount', ...targets]);
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

/** Mount points at or under `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = new Set<string>();
  for (const line of table.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const point = unescapeMountPath(field);
    if (point === dir || point.startsWith(prefix)) points.add(point);
  }
  // Deeper paths first; the same path mounted twice is unmounted twice by the caller.
  return [...points].sort((a, b) => b.length - a.length);
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 ...). */
export function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}

/**
 * Removes a directory tree, but never through a mount: if anything is still mounted
 * under `dir` (an unmount failed earlier in a teardown) it refuses, because removing
 * recursively would delete the bind source's files — a caller's volume.
 */
export async function removeUnmountedTree(dir: string): Promise<void> {
  const mounted = await mountsUnder(dir);
  if (mounted.length > 0) {
    throw new MountError(`not removing ${dir}: still mounted under it: ${mounted.join(', ')}`);
  }
  await rm(dir, { recursive: true, force: true });
}
