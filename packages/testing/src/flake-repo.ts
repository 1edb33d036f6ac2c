import { NIXPKGS_LIB_URL, offlineSeedFiles } from '@seed/local-parts';
import { toNixExpression } from './nix-expression';

export interface DemoSeed {
  /** The `seed.*` options of the instance: the `seed` attrset of its module. */
  seed?: Record<string, unknown>;
  /** Shell run by the image's builder; it must write $out. */
  build?: string;
  /**
   * Raw Nix for the meta, replacing the evaluation of the module (for broken flakes);
   * `lib` (nixpkgs' lib) and `seedMetaOf` are in scope.
   */
  metaExpression?: string;
}

/**
 * Files of a flake with the output shape of a real Seed flake (`seeds.<name>.{meta,image}`)
 * that evaluates offline: meta comes from the instance module `{ seed = <seed>; }`
 * evaluated with the real `seed.*` options (nix/offline.nix's seedMetaOf over the vendored
 * nixpkgs lib, a locked input), image is a toy derivation standing in for the NixOS image.
 */
export async function demoFlakeFiles(
  seeds: Record<string, DemoSeed>,
): Promise<Record<string, string>> {
  const entries = Object.entries(seeds).map(([name, demo]) => {
    const meta =
      demo.metaExpression ??
      `seedMetaOf { inherit lib; name = ${toNixExpression(name)}; module = { seed = ${toNixExpression(demo.seed ?? {})}; }; }`;
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
    `  inputs.nixpkgs-lib.url = ${toNixExpression(NIXPKGS_LIB_URL)};`,
    '  outputs = { self, nixpkgs-lib }:',
    '    let',
    '      inherit (nixpkgs-lib) lib;',
    '      inherit (import ./seed/offline.nix) seedMetaOf;',
    '    in {',
    '    seeds = {',
    ...entries,
    '    };',
    '  };',
    '}',
    '',
  ].join('\n');
  return { 'flake.nix': flake, ...(await offlineSeedFiles()) };
}
