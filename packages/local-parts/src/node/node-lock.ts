// One node per machine: the kubelet's ports (10250, 10248), /kubepods cgroups and the host
// paths it writes are machine-wide. The lock is a folder (mkdir is atomic) naming its
// owner; it also holds the host record, so an owner that died without stopping its node
// is cleaned up by whoever takes the lock next.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadRecord, restoreHost } from './host-changes';
import { sleep } from '../managed-process';

export const NODE_LOCK_DIR = process.env.SEED_NODE_LOCK_DIR ?? '/run/seed-node';

export interface NodeLock {
  /** Where the host record lives while the lock is held. */
  recordPath: string;
  release(): Promise<void>;
}

/** Takes the machine's node lock, waiting up to `timeoutMs` for another owner to finish. */
export async function acquireNodeLock(timeoutMs: number): Promise<NodeLock> {
  const deadline = Date.now() + timeoutMs;
  await mkdir(path.dirname(NODE_LOCK_DIR), { recursive: true });
  for (;;) {
    try {
      await mkdir(NODE_LOCK_DIR);
      await writeFile(path.join(NODE_LOCK_DIR, 'owner'), await processIdentity(process.pid));
      return {
        recordPath: path.join(NODE_LOCK_DIR, 'host.json'),
        release: () => rm(NODE_LOCK_DIR, { recursive: true, force: true }),
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = await readFile(path.join(NODE_LOCK_DIR, 'owner'), 'utf8').catch(() => '');
    if (owner !== '' && !(await ownerAlive(owner))) {
      await cleanUpAfter(owner);
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `another local node runs on this machine (owner ${owner.trim() || 'starting'}, lock ${NODE_LOCK_DIR}); only one kubelet can run per machine`,
      );
    }
    await sleep(500);
  }
}

/** Undoes what a dead owner's node left on the host, then frees its lock. */
async function cleanUpAfter(owner: string): Promise<void> {
  // Renaming claims the stale lock: of two starters that found it, one gets to clean.
  const claimed = `${NODE_LOCK_DIR}.stale-${process.pid}`;
  try {
    await rename(NODE_LOCK_DIR, claimed);
  } catch {
    return;
  }
  const record = await loadRecord(path.join(claimed, 'host.json'));
  if (record) {
    process.emitWarning(
      `a local node whose owner (${owner.trim()}) died was left running: cleaning up ${record.dir}`,
    );
    await restoreHost(record, true);
  }
  await rm(claimed, { recursive: true, force: true });
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
