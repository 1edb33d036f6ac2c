// The files an offline flake carries: the lock offlineSeedFiles writes is the one nix
// itself writes for the vendored lib, and the library under seed/ is complete enough to
// evaluate an instance module through the real seed.* options without a lock-file warning.
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FlakeRepo, NIXPKGS_LIB_URL, offlineSeedFiles } from '../src';

const run = promisify(execFile);
const NIX_ENV = {
  ...process.env,
  NIX_USER_CONF_FILES: process.env.NIX_USER_CONF_FILES ?? '/etc/seed/nix.conf',
};

const nix = (args: string[], cwd?: string): Promise<{ stdout: string; stderr: string }> =>
  run('nix', ['--extra-experimental-features', 'nix-command flakes', ...args], {
    env: NIX_ENV,
    cwd,
  });

const FLAKE = `{
  inputs.nixpkgs-lib.url = ${JSON.stringify(NIXPKGS_LIB_URL)};
  outputs = { self, nixpkgs-lib }: {
    meta = (import ./seed/offline.nix).seedMetaOf {
      inherit (nixpkgs-lib) lib;
      name = "web";
      module = { seed.expose.http = 8080; seed.storage.data = "1Gi"; };
    };
  };
}
`;

describe('offlineSeedFiles', () => {
  let files: Record<string, string> = {};
  let repo: FlakeRepo;

  beforeAll(async () => {
    files = await offlineSeedFiles();
    repo = await FlakeRepo.create({ ...files, 'flake.nix': FLAKE });
  });

  afterAll(async () => {
    await repo.dispose();
  });

  it('points nixpkgs-lib at the vendored tarball of this checkout', () => {
    expect(NIXPKGS_LIB_URL).toBe(
      `file://${path.resolve(__dirname, '../../../nix/vendor/nixpkgs-lib-de42d44212d2.tar.gz')}`,
    );
    expect(Object.keys(files).sort()).toEqual([
      'flake.lock',
      'seed/meta.nix',
      'seed/modules/options.nix',
      'seed/modules/secrets-option.nix',
      'seed/offline.nix',
    ]);
  });

  it('writes the lock nix writes', async () => {
    await rm(path.join(repo.dir, 'flake.lock'));
    await nix(['flake', 'lock'], repo.dir);
    const written = JSON.parse(
      await readFile(path.join(repo.dir, 'flake.lock'), 'utf8'),
    ) as unknown;
    expect(JSON.parse(files['flake.lock'] ?? '')).toEqual(written);
  });

  it('evaluates an instance module at a pinned revision, without writing a lock', async () => {
    const revision = await repo.commit(files);
    const { stdout, stderr } = await nix(['eval', '--json', `${repo.url(revision)}#meta`]);
    expect(JSON.parse(stdout)).toMatchObject({
      name: 'web',
      expose: { http: { port: 8080, protocol: 'http' } },
      storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
    });
    expect(stderr).not.toMatch(/warning|lock/i);
  });
});
