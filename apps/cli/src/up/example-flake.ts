import { readFile } from 'node:fs/promises';
import path from 'node:path';

// The checkout this CLI was built in; the same depth from src/up and dist/up.
const CHECKOUT = path.resolve(__dirname, '../../../..');

/**
 * The files of `examples/hello`, with Seed's meta function beside it: a flake with the
 * shape of a real Seed flake that evaluates without network (toy images stand in for
 * NixOS systems, which need nixpkgs).
 */
export async function exampleFlakeFiles(): Promise<Record<string, string>> {
  return {
    'flake.nix': await readFile(path.join(CHECKOUT, 'examples/hello/flake.nix'), 'utf8'),
    'seed-meta.nix': await readFile(path.join(CHECKOUT, 'nix/meta.nix'), 'utf8'),
  };
}

/** The instance `seed up` changes, and how: web grows from size s to m. */
export const CHANGED_INSTANCE = 'web';

export function resizeWeb(flake: string): string {
  const anchor = 'expose.http = 8080;';
  if (!flake.includes(anchor)) throw new Error(`examples/hello/flake.nix no longer has ${anchor}`);
  return flake.replace(anchor, `size = "m";\n          ${anchor}`);
}
