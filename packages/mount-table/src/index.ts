import { readFile, rm } from 'node:fs/promises';

/** One line of the mount table. */
export interface Mount {
  point: string;
  /** Per-mount options (`ro`, `nosuid`, ...). */
  options: string[];
}

/** This process's mounts, in table order: of two at one point, the later is on top. */
export async function readMounts(): Promise<Mount[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  const mounts: Mount[] = [];
  for (const line of table.split('\n')) {
    const fields = line.split(' ');
    if (fields[4] === undefined) continue;
    mounts.push({ point: unescapeMountPath(fields[4]), options: (fields[5] ?? '').split(',') });
  }
  return mounts;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 ...). */
export function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}

/** Mount points at or under `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = new Set<string>();
  for (const { point } of await readMounts()) {
    if (point === dir || point.startsWith(prefix)) points.add(point);
  }
  // Deeper paths first; the same path mounted twice is unmounted twice by the caller.
  return [...points].sort((a, b) => b.length - a.length);
}

export class StillMounted extends Error {
  override readonly name = 'StillMounted';
}

/**
 * Removes a directory tree, but never through a mount: if anything is still mounted
 * under `dir` (an unmount failed earlier) it refuses, because removing recursively would
 * delete the bind source's files, a caller's volume. An unreadable mount table refuses too.
 */
export async function removeUnmountedTree(dir: string): Promise<void> {
  const mounted = await mountsUnder(dir);
  if (mounted.length > 0) {
    throw new StillMounted(`not removing ${dir}: still mounted under it: ${mounted.join(', ')}`);
  }
  await rm(dir, { recursive: true, force: true });
}
