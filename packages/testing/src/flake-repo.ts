import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { toNixExpression } from './nix-expression';

const run = promisify(execFile);

/** nix/meta.nix of this checkout: fixture flakes carry a copy, as they may have no inputs. */
export const SEED_META_NIX = path.resolve(__dirname, '../../../nix/meta.nix');

const GIT_IDENTITY = ['-c', 'user.name=Seed Tests', '-c', 'user.email=tests@seed.invalid'];

/** A throwaway git repository standing in for a tenant's pushed flake. */
export class FlakeRepo {
  private constructor(readonly dir: string) {}

  static async create(files: Record<string, string> = {}): Promise<FlakeRepo> {
    const dir = await mkdtemp(path.join(tmpdir(), 'seed-flake-'));
    await run('git', ['init', '--quiet', '--initial-branch=main', dir]);
    const repo = new FlakeRepo(dir);
    if (Object.keys(files).length > 0) await repo.commit(files);
    return repo;
  }

  /** Writes the files, commits everything and returns the new commit id. */
  async commit(files: Record<string, string>, message = 'update'): Promise<string> {
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(this.dir, name)), { recursive: true });
      await writeFile(path.join(this.dir, name), content);
    }
    await this.git('add', '--all');
    await this.git(...GIT_IDENTITY, 'commit', '--quiet', '--allow-empty', '-m', message);
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

export interface DemoSeed {
  /** The `seed.*` options of the instance, as a user would write them. */
  seed?: Record<string, unknown>;
  /** Shell run by the image's builder; it must write $out. */
  build?: string;
  /** Raw Nix for the meta, replacing the meta function call (for broken flakes). */
  metaExpression?: string;
}

/**
 * Files of a flake with the output shape of a real Seed flake (`seeds.<name>.{meta,image}`)
 * that evaluates offline: meta comes from Seed's own meta function, image is a toy
 * derivation standing in for the NixOS image.
 */
export async function demoFlakeFiles(
  seeds: Record<string, DemoSeed>,
): Promise<Record<string, string>> {
  const entries = Object.entries(seeds).map(([name, demo]) => {
    const meta =
      demo.metaExpression ??
      `import ./seed-meta.nix { name = ${toNixExpression(name)}; seed = ${toNixExpression(demo.seed ?? {})}; }`;
    const build = demo.build ?? `echo ${name} > $out`;
    return [
      `    ${toNixExpression(name)} = {`,
      `      meta = ${meta};`,
      `      image = derivation { name = "seed-${name}-image"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" ${toNixExpression(build)} ]; };`,
      '    };',
    ].join('\n');
  });
  const flake = [
    '{',
    '  outputs = { self }: {',
    '    seeds = {',
    ...entries,
    '    };',
    '  };',
    '}',
    '',
  ].join('\n');
  return { 'flake.nix': flake, 'seed-meta.nix': await readFile(SEED_META_NIX, 'utf8') };
}
