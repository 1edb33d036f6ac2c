import { readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { ReapReport } from './hypervisor';
import { mountsUnder, removeUnmountedTree } from '@seed/mount-table';
import { unmount } from './host-mounts';
import { RunLayout } from './run-dir';
import { killOrphan, processesReferencing } from './vmm-process';

/**
 * Cleans up after a daemon that died without destroying its VMs: kills every process
 * whose argv or stdout names a path under `runRoot` (VMMs, their helpers, virtiofsd), then
 * — in the order a VM's own cleanup stack uses — unmounts what is mounted under it,
 * removes this run root's memory files from `shmDir`, and empties the run root (VMs,
 * snapshots and closure views). Processes are found that way (processesReferencing)
 * rather than by pid files, which a reused pid would make lie.
 * Call it only while this daemon has no VM of its own under `runRoot`.
 */
export async function reapOrphans(runRoot: string, shmDir = '/dev/shm'): Promise<ReapReport> {
  const root = path.resolve(runRoot);
  const layout = new RunLayout(root, shmDir);
  const report: ReapReport = { killed: [], unmounted: [], removed: [] };

  for (const pid of await processesReferencing(`${root}/`)) {
    await killOrphan(pid);
    report.killed.push(pid);
  }
  for (const point of await mountsUnder(root)) {
    await unmount(point);
    report.unmounted.push(point);
  }
  for (const name of await listDir(shmDir)) {
    if (!layout.ownsRamFile(name)) continue;
    const file = path.join(shmDir, name);
    await unlink(file).catch(ignoreMissing);
    report.removed.push(file);
  }
  for (const sub of ['vms', 'snapshots', 'closures']) {
    for (const name of await listDir(path.join(root, sub))) {
      const dir = path.join(root, sub, name);
      await removeUnmountedTree(dir);
      report.removed.push(dir);
    }
  }
  return report;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}
