import { execFile } from 'node:child_process';
import { access, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { flakeKey, gitRemoteOf } from '@seed/contracts';

/**
 * The flake's git history could not be read: the remote did not answer (retryable), or it
 * does not hold the pushed commit (not: nix would not find it either).
 */
export class HistoryUnavailable extends Error {
  override readonly name = 'HistoryUnavailable';

  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** Where a pushed commit stands against the one the flake runs (GitHistory.ancestry). */
export type Ancestry = 'descends' | 'rewritten' | 'behind';

export interface GitHistoryOptions {
  /** Where the bare mirrors live, one per flake; a cache: losing it costs one full fetch. */
  dir: string;
  /** Limit of each git command (a fetch above all). */
  timeoutMs: number;
  gitBinary?: string;
}

/**
 * Answers "does this commit go forward from that one?" from a bare mirror of the flake's
 * repository that the builder keeps under its own folder and fetches before each check.
 *
 * Why a mirror of our own rather than what nix fetched: `github:` flakes come as tarballs,
 * with no history at all, and nix 2.8's git cache (`~/.cache/nix/gitv3`) belongs to the
 * nix client's user, fetches only what one lock needs and has no stable layout to rely
 * on. A bare mirror fetched incrementally (only the objects pushed since the last build)
 * is the cheapest means that works the same for every git scheme Seed accepts, and
 * `git merge-base --is-ancestor` gives the answer from the commit graph, locally.
 *
 * Credentials: git's own (a credential helper, ssh keys, a netrc file), like nix's git
 * fetcher; none are in the flake URI (parseFlakeRef refuses them).
 */
export class GitHistory {
  private readonly git: string;

  constructor(private readonly options: GitHistoryOptions) {
    this.git = options.gitBinary ?? 'git';
  }

  /**
   * Where `commit` stands against `applied`, the commit the flake runs, on `branch` as
   * the remote has it now: `descends` (from it, or is it); `rewritten` when the branch was
   * rewritten since (the applied commit is on it no more) and the commit is on it;
   * `behind` otherwise. Undefined when the flake is not a git repository (path:, tarball),
   * whose history cannot be asked.
   */
  async ancestry(
    flake: string,
    branch: string,
    applied: string,
    commit: string,
    signal?: AbortSignal,
  ): Promise<Ancestry | undefined> {
    const remote = gitRemoteOf(flake)?.url;
    if (remote === undefined) return undefined;
    const mirror = await this.mirror(flake, signal);
    const head = `refs/heads/${branch}`;
    try {
      // `+`: a force-pushed branch moves backwards in the mirror as well.
      await this.run(
        mirror,
        ['fetch', '--quiet', '--no-tags', '--', remote, `+${head}:${head}`],
        signal,
      );
    } catch (error) {
      signal?.throwIfAborted();
      // A git killed mid-fetch (a crash) may leave a ref lock that would fail every later
      // fetch: the mirror is a cache, so the next attempt starts it afresh.
      if (String((error as { stderr?: unknown }).stderr).includes('.lock'))
        await rm(mirror, { recursive: true, force: true });
      throw new HistoryUnavailable(
        `could not fetch branch ${branch} of ${remote}: ${gitMessage(error)}`,
        true,
      );
    }
    if (!(await this.has(mirror, commit, signal))) {
      // A replayed delivery's commit may have left the branch (force-pushed away): ask for
      // it by id, which GitHub and git's own servers allow for any commit they hold.
      await this.run(mirror, ['fetch', '--quiet', '--no-tags', '--', remote, commit], signal).catch(
        () => signal?.throwIfAborted(),
      );
      if (!(await this.has(mirror, commit, signal)))
        throw new HistoryUnavailable(`commit ${commit} is not in ${remote}`, false);
    }
    if (await this.isAncestor(mirror, applied, commit, signal)) return 'descends';
    // The branch is the forge's word on where the flake goes: once it no longer holds the
    // applied commit it was rewritten (a forced push, whether or not the delivery said so
    // — GitLab's never does, a poll cannot), and a commit on it goes forward.
    if (
      !(await this.isAncestor(mirror, applied, head, signal)) &&
      (await this.isAncestor(mirror, commit, head, signal))
    )
      return 'rewritten';
    return 'behind';
  }

  /**
   * `git merge-base --is-ancestor`. Fetching a commit fetches all its history, so an
   * ancestor the mirror lacks is no ancestor.
   */
  private async isAncestor(
    mirror: string,
    ancestor: string,
    descendant: string,
    signal?: AbortSignal,
  ): Promise<boolean> {
    if (!(await this.has(mirror, ancestor, signal))) return false;
    try {
      await this.run(mirror, ['merge-base', '--is-ancestor', ancestor, descendant], signal);
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === 1) return false;
      signal?.throwIfAborted();
      throw new HistoryUnavailable(
        `git merge-base --is-ancestor failed: ${gitMessage(error)}`,
        true,
      );
    }
  }

  /** The flake's bare mirror, made on first use. */
  private async mirror(flake: string, signal?: AbortSignal): Promise<string> {
    const mirror = path.join(this.options.dir, `${flakeKey(flake)}.git`);
    const made = await access(path.join(mirror, 'HEAD')).then(
      () => true,
      () => false,
    );
    if (!made) {
      await mkdir(mirror, { recursive: true });
      await this.run(mirror, ['init', '--quiet', '--bare'], signal);
    }
    return mirror;
  }

  private has(mirror: string, commit: string, signal?: AbortSignal): Promise<boolean> {
    return this.run(mirror, ['cat-file', '-e', `${commit}^{commit}`], signal).then(
      () => true,
      () => {
        signal?.throwIfAborted();
        return false;
      },
    );
  }

  private run(mirror: string, args: string[], signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(
        this.git,
        ['-C', mirror, ...args],
        {
          timeout: this.options.timeoutMs,
          signal,
          maxBuffer: 1024 * 1024,
          // Never wait for a password on a terminal nobody watches.
          env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
        },
        (error, _stdout, stderr) => {
          if (!error) return resolve();
          // A cancelled build ends with its own reason, not git's "operation was aborted".
          if (signal?.aborted) return reject(signal.reason as Error);
          // What git said is the useful part of a failure; the exit code tells no from broken.
          const failure: Error & { stderr?: string } = error;
          failure.stderr = String(stderr);
          reject(failure);
        },
      );
    });
  }
}

function gitMessage(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  const text = typeof stderr === 'string' && stderr.trim() !== '' ? stderr : String(error);
  return text.trim().split('\n').slice(-3).join(' ');
}
