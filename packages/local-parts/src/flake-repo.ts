import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const GIT_IDENTITY = ['-c', 'user.name=Seed', '-c', 'user.email=seed@seed.invalid'];

/** A throwaway git repository standing in for a tenant's pushed flake (tests, `seed up`). */
export class FlakeRepo {
  private constructor(readonly dir: string) {}

  static async create(
    files: Record<string, string> = {},
    parentDir: string = tmpdir(),
  ): Promise<FlakeRepo> {
    const dir = await mkdtemp(path.join(parentDir, 'seed-flake-'));
    await run('git', ['init', '--quiet', '--initial-branch=main', dir]);
    const repo = new FlakeRepo(dir);
    if (Object.keys(files).length > 0) await repo.commit(files);
    return repo;
  }

  /** A repository `create` made earlier (another holder of its folder). */
  static open(dir: string): FlakeRepo {
    return new FlakeRepo(dir);
  }

  /** Writes the files, commits everything and returns the new commit id. */
  async commit(files: Record<string, string>, message = 'update'): Promise<string> {
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(this.dir, name)), { recursive: true });
      await writeFile(path.join(this.dir, name), content);
    }
    await this.git('add', '--all');
    await this.git(...GIT_IDENTITY, 'commit', '--quiet', '--allow-empty', '-m', message);
    return this.head();
  }

  /** The commit the default branch points at. */
  async head(): Promise<string> {
    return (await this.git('rev-parse', 'HEAD')).trim();
  }

  /** `git+file://` reference of the repository, pinned to a revision when given. */
  url(revision?: string): string {
    return revision === undefined
      ? `git+file://${this.dir}`
      : `git+file://${this.dir}?rev=${revision}`;
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  private async git(...args: string[]): Promise<string> {
    const { stdout } = await run('git', ['-C', this.dir, ...args]);
    return stdout;
  }
}
