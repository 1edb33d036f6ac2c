import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { NIXPKGS_LIB_URL, offlineSeedFiles } from '@seed/local-parts';
import { toNixExpression } from './nix-expression';

/** nix/offline-image.nix of this checkout: fixture flakes with real images carry a copy. */
export const SEED_OFFLINE_IMAGE_NIX = path.resolve(__dirname, '../../../nix/offline-image.nix');

export interface DemoSeed {
  /** The `seed.*` options of the instance: the `seed` attrset of its module. */
  seed?: Record<string, unknown>;
  /** Shell run by the image's builder (or, with real images, of a store path in its closure); it must write $out. */
  build?: string;
  /**
   * With real images: the shell script the container runs as PID 1 (busybox sh -c; its
   * applets need no PATH). Default: prints `<name> running`, then waits, and exits 0 at
   * once on SIGTERM. `$SEED_DEMO_CONTENT` names the output of `build`.
   */
  run?: string;
  /**
   * Raw Nix for the meta, replacing the evaluation of the module (for broken flakes);
   * `lib` (nixpkgs' lib) and `seedMetaOf` are in scope.
   */
  metaExpression?: string;
}

export interface DemoFlakeOptions {
  /**
   * A flake-tools directory (`flakeToolsDir()` of @seed/local-parts): when given, each
   * `image` is a real nix-snapshotter image (nix/offline-image.nix, the format of
   * mkSeed's) whose closure holds the `build` output, and the flake takes the directory as
   * the `path:` input `seed-tools`. Without it, `image` is the toy derivation itself.
   */
  tools?: string;
}

/**
 * Files of a flake with the output shape of a real Seed flake (`seeds.<name>.{meta,image}`)
 * that evaluates offline: meta comes from the instance module `{ seed = <seed>; }`
 * evaluated with the real `seed.*` options (nix/offline.nix's seedMetaOf over the vendored
 * nixpkgs lib, a locked input); image is a toy derivation standing in for the NixOS image,
 * or with `options.tools` a real nix-snapshotter image around it.
 */
export async function demoFlakeFiles(
  seeds: Record<string, DemoSeed>,
  options: DemoFlakeOptions = {},
): Promise<Record<string, string>> {
  const { tools } = options;
  const entries = Object.entries(seeds).map(([name, demo]) => {
    const meta =
      demo.metaExpression ??
      `seedMetaOf { inherit lib; name = ${toNixExpression(name)}; module = { seed = ${toNixExpression(demo.seed ?? {})}; }; }`;
    const build = toNixExpression(demo.build ?? `echo ${name} > $out`);
    const content =
      tools === undefined
        ? `derivation { name = "seed-${name}-image"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" ${build} ]; }`
        : `derivation { name = "seed-${name}-content"; system = "x86_64-linux"; builder = busybox; args = [ "sh" "-c" ${build} ]; }`;
    const image =
      tools === undefined
        ? content
        : [
            `offlineImage {`,
            `        name = "seed-${name}";`,
            `        config.entrypoint = [ busybox "sh" "-c" ${toNixExpression(demo.run ?? defaultRun(name))} ];`,
            `        config.env = [ "SEED_DEMO_CONTENT=\${${content}}" ];`,
            `      }`,
          ].join('\n');
    return [
      `    ${toNixExpression(name)} = {`,
      `      meta = ${meta};`,
      `      image = ${image};`,
      '    };',
    ].join('\n');
  });
  const flake = [
    '{',
    `  inputs.nixpkgs-lib.url = ${toNixExpression(NIXPKGS_LIB_URL)};`,
    ...(tools === undefined
      ? []
      : [`  inputs.seed-tools = { url = ${toNixExpression(`path:${tools}`)}; flake = false; };`]),
    `  outputs = { self, nixpkgs-lib${tools === undefined ? '' : ', seed-tools'} }:`,
    '    let',
    '      inherit (nixpkgs-lib) lib;',
    '      inherit (import ./seed/offline.nix) seedMetaOf;',
    ...(tools === undefined
      ? []
      : [
          '      offlineImage = import ./seed-offline-image.nix { tools = seed-tools; };',
          '      busybox = "${seed-tools}/bin/busybox";',
        ]),
    '    in {',
    '    seeds = {',
    ...entries,
    '    };',
    '  };',
    '}',
    '',
  ].join('\n');
  return {
    'flake.nix': flake,
    ...(await offlineSeedFiles()),
    ...(tools !== undefined && {
      'seed-offline-image.nix': await readFile(SEED_OFFLINE_IMAGE_NIX, 'utf8'),
    }),
  };
}

/** A process that stays up and stops at once on SIGTERM (PID 1 ignores it untrapped). */
function defaultRun(name: string): string {
  return `trap 'exit 0' TERM INT; echo ${name} running; sleep 2147483647 & wait`;
}
