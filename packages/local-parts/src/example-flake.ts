import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { flakeToolsDir } from './flake-tools';
import { NIXPKGS_LIB_URL, offlineSeedFiles } from './seed-library';

// The checkout; the same depth from src/ and dist/.
const CHECKOUT = path.resolve(__dirname, '../../..');
const EXAMPLE_DIR = path.join(CHECKOUT, 'examples/hello');

/**
 * The inputs examples/hello/flake.nix names as committed, and what they become: the
 * upstream commit of the vendored nixpkgs lib, and `path:` stand-ins for the
 * directories scripts/flake-tools prepares.
 */
const INPUTS: { committed: string; local: () => Promise<string> }[] = [
  {
    committed: 'github:nix-community/nixpkgs.lib/de42d44212d207476489bce163375d8306a26d59',
    local: () => Promise.resolve(NIXPKGS_LIB_URL),
  },
  {
    committed: 'path:/seed-flake-tools',
    local: async () => `path:${await flakeToolsDir('tools')}`,
  },
  {
    committed: 'path:/seed-flake-coredns',
    local: async () => `path:${await flakeToolsDir('coredns')}`,
  },
  {
    committed: 'path:/seed-flake-shoot-client',
    local: async () => `path:${await flakeToolsDir('shoot-client')}`,
  },
];

// Seed's in-instance shoot client for flakes without nixpkgs, under the flake's seed/
// (offline-seed-shoot.nix reads seed-shoot.sh beside it).
const SEED_SHOOT_FILES = ['offline-seed-shoot.nix', 'seed-shoot.sh'];

/**
 * The files of `examples/hello` with Seed's offline library, offline image builder and
 * lock beside them, its inputs pointed at local copies: a flake with the shape of a real
 * Seed flake, metas from the real `seed.*` options, that evaluates and builds without
 * network (small servers in nix-snapshotter images stand in for NixOS systems, which
 * need nixpkgs).
 */
export async function exampleFlakeFiles(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of await listFiles(EXAMPLE_DIR)) {
    files[name] = await readFile(path.join(EXAMPLE_DIR, name), 'utf8');
  }
  let flake = files['flake.nix'] ?? '';
  for (const input of INPUTS) {
    const quoted = JSON.stringify(input.committed);
    if (!flake.includes(quoted)) {
      throw new Error(`examples/hello/flake.nix no longer has the input ${quoted}`);
    }
    flake = flake.replace(quoted, JSON.stringify(await input.local()));
  }
  return {
    ...files,
    'flake.nix': flake,
    'seed-offline-image.nix': await readFile(path.join(CHECKOUT, 'nix/offline-image.nix'), 'utf8'),
    ...(await seedShootFiles()),
    ...(await offlineSeedFiles()),
  };
}

async function seedShootFiles(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const file of SEED_SHOOT_FILES) {
    files[`seed/${file}`] = await readFile(path.join(CHECKOUT, 'nix', file), 'utf8');
  }
  return files;
}

/** Paths of the files under `dir`, relative to it, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}
