import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { flakeToolsDir } from '@seed/local-parts';

// The checkout this CLI was built in; the same depth from src/up and dist/up.
const CHECKOUT = path.resolve(__dirname, '../../../..');
const EXAMPLE_DIR = path.join(CHECKOUT, 'examples/hello');

/** The `path:` inputs examples/hello/flake.nix names, replaced by real directories. */
const TOOL_INPUTS = {
  'path:/seed-flake-tools': 'tools',
  'path:/seed-flake-coredns': 'coredns',
} as const;

/**
 * The files of `examples/hello`, with Seed's meta function and offline image builder
 * beside them: a flake with the shape of a real Seed flake that evaluates and builds
 * without network (small servers in nix-snapshotter images stand in for NixOS systems,
 * which need nixpkgs). Its tool inputs point at the directories scripts/flake-tools
 * prepares (static busybox and nix2container; CoreDNS).
 */
export async function exampleFlakeFiles(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of await listFiles(EXAMPLE_DIR)) {
    files[name] = await readFile(path.join(EXAMPLE_DIR, name), 'utf8');
  }
  files['seed-meta.nix'] = await readFile(path.join(CHECKOUT, 'nix/meta.nix'), 'utf8');
  files['seed-offline-image.nix'] = await readFile(
    path.join(CHECKOUT, 'nix/offline-image.nix'),
    'utf8',
  );
  let flake = files['flake.nix'] ?? '';
  for (const [placeholder, kind] of Object.entries(TOOL_INPUTS)) {
    if (!flake.includes(`"${placeholder}"`)) {
      throw new Error(`examples/hello/flake.nix no longer has the input "${placeholder}"`);
    }
    flake = flake.replace(`"${placeholder}"`, JSON.stringify(`path:${await flakeToolsDir(kind)}`));
  }
  files['flake.nix'] = flake;
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

/** The instance `seed up` changes, and how: web grows from size s to m. */
export const CHANGED_INSTANCE = 'web';

export function resizeWeb(flake: string): string {
  const anchor = 'expose.http = 8080;';
  if (!flake.includes(anchor)) throw new Error(`examples/hello/flake.nix no longer has ${anchor}`);
  return flake.replace(anchor, `size = "m";\n          ${anchor}`);
}
