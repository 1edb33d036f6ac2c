import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// The checkout's nix/ directory; the same depth from src/ and dist/.
const NIX_DIR = path.resolve(__dirname, '../../../nix');

/**
 * The `nixpkgs-lib` input of an offline flake: nixpkgs' lib (the module system, no
 * packages) vendored in nix/vendor, by absolute path (nix 2.8 reads a `file://` tarball;
 * it refuses `tarball+file://`). See nix/vendor/README.md.
 */
export const NIXPKGS_LIB_URL = pathToFileURL(
  path.join(NIX_DIR, 'vendor', 'nixpkgs-lib-de42d44212d2.tar.gz'),
).href;

// The NAR hash of the tarball's content, which nix records when it locks the input
// (the test of this file compares it with the lock nix writes).
const NIXPKGS_LIB_NAR_HASH = 'sha256-2LHgHa0CAYjMN1PQ3Y3JSPGyKkpMA2dKFT7agAnZK7U=';

// nix/offline.nix and what it imports, by their paths under nix/ (kept as they are
// under the flake's seed/, so the relative imports hold).
const OFFLINE_LIBRARY = [
  'offline.nix',
  'meta.nix',
  'modules/options.nix',
  'modules/secrets-option.nix',
];

/**
 * What an offline flake (the example `seed up` pushes, the test fixtures) carries beside
 * its flake.nix, whose only input is `nixpkgs-lib.url = NIXPKGS_LIB_URL`:
 *   - Seed's offline library under `seed/`: `(import ./seed/offline.nix).seedMetaOf`
 *     evaluates an instance module with the real `seed.*` options;
 *   - a `flake.lock` pinning that input, so nix evaluates the flake like a tenant's
 *     locked flake: nothing to write, nothing fetched from the network.
 */
export async function offlineSeedFiles(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const file of OFFLINE_LIBRARY) {
    files[`seed/${file}`] = await readFile(path.join(NIX_DIR, file), 'utf8');
  }
  const input = { type: 'tarball', url: NIXPKGS_LIB_URL };
  const lock = {
    nodes: {
      'nixpkgs-lib': { locked: { narHash: NIXPKGS_LIB_NAR_HASH, ...input }, original: input },
      root: { inputs: { 'nixpkgs-lib': 'nixpkgs-lib' } },
    },
    root: 'root',
    version: 7,
  };
  files['flake.lock'] = `${JSON.stringify(lock, null, 2)}\n`;
  return files;
}
