import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { toNixExpression } from './nix-expression';

/** nix/meta.nix of this checkout: fixture flakes carry a copy, as they may have no inputs. */
export const SEED_META_NIX = path.resolve(__dirname, '../../../nix/meta.nix');

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
