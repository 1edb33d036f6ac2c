import { execFile } from 'node:child_process';
import type { BuildJob, Forge, StatusTarget } from '@seed/contracts';

export interface BranchHead {
  /** `refs/heads/<branch>`. */
  ref: string;
  commit: string;
}

/**
 * A flake's branch as Seed reads it when no delivery says what it holds (a poll, a
 * rebuild): where to ask, and what its builds carry.
 */
export interface FlakeBranch {
  flake: string;
  remote: string;
  branch?: string;
  /** The forge its statuses go to (such a build has no delivery to say). */
  forge: Forge;
  quota: BuildJob['quota'];
  forgeStatus?: StatusTarget;
}

/** The build of a commit on a flake's branch, as a push of it would queue it. */
export function branchBuild(
  branch: FlakeBranch,
  head: BranchHead,
  deliveryId: string,
  receivedAt: Date,
  operator: Pick<BuildJob, 'rebuild' | 'allowBackward'> = {},
): BuildJob {
  return {
    flake: branch.flake,
    commit: head.commit,
    ref: head.ref,
    forge: branch.forge,
    deliveryId,
    receivedAt: receivedAt.toISOString(),
    ...(branch.quota && { quota: branch.quota }),
    ...(branch.forgeStatus && { forgeStatus: branch.forgeStatus }),
    ...operator,
  };
}

/** The remote could not be asked, or has no such branch; the message says which. */
export class BranchHeadUnknown extends Error {
  override readonly name = 'BranchHeadUnknown';
}

/**
 * The commit a remote's branch points at, by `git ls-remote` (one round trip, no
 * objects fetched). With no branch, the remote's default branch (its HEAD symref).
 */
export async function readBranchHead(
  remote: string,
  branch: string | undefined,
  timeoutMs: number,
): Promise<BranchHead> {
  const wanted = branch === undefined ? 'HEAD' : `refs/heads/${branch}`;
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      'git',
      ['ls-remote', '--symref', '--', remote, wanted],
      {
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        // A poll must never wait on a prompt for credentials nobody will type.
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', SSH_ASKPASS: 'true' },
      },
      (error, stdout, stderr) => {
        if (error) {
          const reason = error.killed ? `no answer within ${timeoutMs} ms` : stderr.trim();
          reject(new BranchHeadUnknown(`git ls-remote ${remote}: ${reason || error.message}`));
        } else resolve(stdout);
      },
    );
  });
  let ref = wanted;
  for (const line of output.split('\n')) {
    const symref = /^ref: (refs\/heads\/\S+)\tHEAD$/.exec(line);
    if (symref) ref = symref[1]!;
    const head = /^([0-9a-f]{40})\t(\S+)$/.exec(line);
    if (head && head[2] === wanted) return { ref, commit: head[1]! };
  }
  throw new BranchHeadUnknown(`git ls-remote ${remote}: no ${wanted}`);
}
