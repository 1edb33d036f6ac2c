// One node per machine: the kubelet's ports (10250, 10248), /kubepods cgroups and the host
// paths it writes are machine-wide. The lock also holds the host record, so an owner that
// died without stopping its node is cleaned up by whoever takes the lock next.
import path from 'node:path';
import { acquireFolderLock } from '../folder-lock';
import { loadRecord, restoreHost } from './host-changes';

export const NODE_LOCK_DIR = process.env.SEED_NODE_LOCK_DIR ?? '/run/seed-node';

export interface NodeLock {
  /** Where the host record lives while the lock is held. */
  recordPath: string;
  release(): Promise<void>;
}

/** Takes the machine's node lock, waiting up to `timeoutMs` for another owner to finish. */
export async function acquireNodeLock(timeoutMs: number): Promise<NodeLock> {
  const lock = await acquireFolderLock(NODE_LOCK_DIR, {
    timeoutMs,
    busyMessage: (owner) =>
      `another local node runs on this machine (owner ${owner}, lock ${NODE_LOCK_DIR}); only one kubelet can run per machine`,
    cleanUpAfter: async (claimed, owner) => {
      const record = await loadRecord(path.join(claimed, 'host.json'));
      if (!record) return;
      process.emitWarning(
        `a local node whose owner (${owner.trim()}) died was left running: cleaning up ${record.dir}`,
      );
      await restoreHost(record, true);
    },
  });
  return { recordPath: path.join(lock.folder, 'host.json'), release: () => lock.release() };
}
