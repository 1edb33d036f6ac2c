// The builder's evaluate phase repeated by hand: the same two nix commands (lock the
// pushed commit, evaluate every seed's meta and image .drv in one process) against the
// builder's own store and nix.conf, with nothing around them. The difference is what the
// builder adds to evaluation. By hand runs after the build, so it finds the commit's
// source and the .drv files already in the store and may skip their writes; `--no-eval-cache`
// keeps it from reading the builder's evaluation back. Both make it faster, so the
// overhead read from it errs high.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RunningStack } from '@seed/dev-stack';

const run = promisify(execFile);
// The builder's expression (@seed/nix-eval's SEEDS_APPLY).
const SEEDS_APPLY =
  'seeds: builtins.mapAttrs (name: seed: { meta = seed.meta; image = seed.image.drvPath; }) seeds';

/** Milliseconds of `nix flake metadata` and `nix eval …#seeds` of `commit`, by hand. */
export async function evaluateByHand(stack: RunningStack, commit: string): Promise<number> {
  const { store, confFile } = stack.builderNix;
  const nix = async (args: string[]) =>
    (
      await run(
        'nix',
        ['--extra-experimental-features', 'nix-command flakes', '--store', store, ...args],
        {
          env: { PATH: process.env.PATH, HOME: process.env.HOME, NIX_USER_CONF_FILES: confFile },
          maxBuffer: 16 * 1024 * 1024,
        },
      )
    ).stdout;
  const pinned = `git+file://${stack.flakeDir}?ref=${stack.delivery.branch}&rev=${commit}`;
  const started = performance.now();
  const { url } = JSON.parse(
    await nix(['flake', 'metadata', '--json', '--no-write-lock-file', pinned]),
  ) as { url: string };
  await nix([
    'eval',
    '--json',
    '--no-write-lock-file',
    '--no-eval-cache',
    `${url}#seeds`,
    '--apply',
    SEEDS_APPLY,
  ]);
  return performance.now() - started;
}
