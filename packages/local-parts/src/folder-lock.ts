// A lock that is a folder (mkdir is atomic) naming its owner process, so a lock whose
// owner died is found stale and taken over instead of waited out.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sleep } from './managed-process';

export interface FolderLock {
  folder: string;
  release(): Promise<void>;
}

export interface FolderLockOptions {
  timeoutMs: number;
  /** What the error says is held when the wait runs out. */
  busyMessage: (owner: string) => string;
  /** Undoes what a dead owner left, given the folder renamed aside for it; then it is removed. */
  cleanUpAfter?: (claimedFolder: string, owner: string) => Promise<void>;
}

export async function acquireFolderLock(
  folder: string,
  options: FolderLockOptions,
): Promise<FolderLock> {
  const deadline = Date.now() + options.timeoutMs;
  await mkdir(path.dirname(folder), { recursive: true });
  for (;;) {
    try {
      await mkdir(folder);
      await writeFile(path.join(folder, 'owner'), await processIdentity(process.pid));
      return { folder, release: () => rm(folder, { recursive: true, force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = await readFile(path.join(folder, 'owner'), 'utf8').catch(() => '');
    if (owner !== '' && !(await ownerAlive(owner))) {
      await takeOverStale(folder, owner, options.cleanUpAfter);
      continue;
    }
    if (Date.now() > deadline) throw new Error(options.busyMessage(owner.trim() || 'starting'));
    await sleep(500);
  }
}

async function takeOverStale(
  folder: string,
  owner: string,
  cleanUpAfter: FolderLockOptions['cleanUpAfter'],
): Promise<void> {
  // Renaming claims the stale lock: of two waiters that found it, one gets to clean.
  const claimed = `${folder}.stale-${process.pid}`;
  try {
    await rename(folder, claimed);
  } catch {
    return;
  }
  try {
    await cleanUpAfter?.(claimed, owner);
  } finally {
    await rm(claimed, { recursive: true, force: true });
  }
}

/** "pid start-time": a pid alone may have been reused since. */
async function processIdentity(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Field 22 (starttime) counted after the command, which may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return `${pid} ${fields[19]}`;
}

async function ownerAlive(owner: string): Promise<boolean> {
  const pid = Number(owner.split(' ')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const identity = await processIdentity(pid).catch(() => undefined);
  return identity === owner.trim();
}
