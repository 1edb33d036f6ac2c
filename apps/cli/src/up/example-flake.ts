import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { NIXPKGS_LIB_URL, offlineSeedFiles } from '@seed/local-parts';

// The checkout this CLI was built in; the same depth from src/up and dist/up.
const CHECKOUT = path.resolve(__dirname, '../../../..');

// The example's nixpkgs-lib input as committed (the upstream commit of the vendored lib).
const UPSTREAM_NIXPKGS_LIB =
  '"github:nix-community/nixpkgs.lib/de42d44212d207476489bce163375d8306a26d59"';

/**
 * The files of `examples/hello` with Seed's offline library and lock beside it, its
 * `nixpkgs-lib` input pointed at the vendored copy: a flake with the shape of a real Seed
 * flake, metas from the real `seed.*` options, that evaluates without network (toy
 * images stand in for NixOS systems, which need nixpkgs).
 */
export async function exampleFlakeFiles(): Promise<Record<string, string>> {
  const flake = await readFile(path.join(CHECKOUT, 'examples/hello/flake.nix'), 'utf8');
  if (!flake.includes(UPSTREAM_NIXPKGS_LIB)) {
    throw new Error(
      `examples/hello/flake.nix no longer takes nixpkgs-lib from ${UPSTREAM_NIXPKGS_LIB}`,
    );
  }
  return {
    'flake.nix': flake.replace(UPSTREAM_NIXPKGS_LIB, JSON.stringify(NIXPKGS_LIB_URL)),
    ...(await offlineSeedFiles()),
  };
}

/** The instance `seed up` changes, and how: web grows from size s to m. */
export const CHANGED_INSTANCE = 'web';

export function resizeWeb(flake: string): string {
  const anchor = 'expose.http = 8080;';
  if (!flake.includes(anchor)) throw new Error(`examples/hello/flake.nix no longer has ${anchor}`);
  return flake.replace(anchor, `size = "m";\n          ${anchor}`);
}
