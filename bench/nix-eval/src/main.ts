// bench/nix-eval: what the typed wrapper costs over running nix by hand, and what one
// evaluation process for all seeds saves over one process per seed. Both sides of each
// comparison run interleaved in the same process on the same flake, so machine noise
// hits them alike; the figures to read are the ratios.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NixClient } from '@seed/nix-eval';
import {
  benchSettings,
  demoFlakeFiles,
  FlakeRepo,
  type DemoSeed,
  runBench,
  median,
  rowPrinter,
} from '@seed/testing';

const run = promisify(execFile);
const CONF = process.env.SEED_NIX_CONF ?? '/etc/seed/nix.conf';
const { BENCH_ROUNDS: ROUNDS } = benchSettings('bench/nix-eval', { BENCH_ROUNDS: 15 });
const SEEDS = 20;
const APPLY =
  'seeds: builtins.mapAttrs (name: seed: { meta = seed.meta; image = seed.image.drvPath; }) seeds';

async function timed(action: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function rawNix(args: string[]): Promise<string> {
  const { stdout } = await run(
    'nix',
    ['--extra-experimental-features', 'nix-command flakes', ...args],
    {
      env: { ...process.env, NIX_USER_CONF_FILES: CONF },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return stdout;
}

async function main(): Promise<void> {
  const seeds: Record<string, DemoSeed> = {};
  for (let i = 0; i < SEEDS; i += 1) {
    seeds[`seed-${i}`] = {
      seed: { size: i % 2 ? 'm' : 's', expose: { http: 8000 + i }, storage: { data: '1Gi' } },
    };
  }
  const repo = await FlakeRepo.create(await demoFlakeFiles(seeds));
  try {
    const nix = new NixClient({ confFile: CONF });
    const locked = (await nix.resolve(repo.url())).url;
    await nix.evaluateSeeds(locked); // warm the fetcher and eval caches for both sides

    const wrapper: number[] = [];
    const raw: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      wrapper.push(await timed(() => nix.evaluateSeeds(locked)));
      raw.push(
        await timed(
          async () =>
            JSON.parse(
              await rawNix(['eval', '--json', `${locked}#seeds`, '--apply', APPLY]),
            ) as unknown,
        ),
      );
    }

    const oneProcess: number[] = [];
    const perSeed: number[] = [];
    for (let round = 0; round < Math.max(3, Math.floor(ROUNDS / 3)); round += 1) {
      oneProcess.push(await timed(() => nix.evaluateSeeds(locked)));
      perSeed.push(
        await timed(async () => {
          for (const name of Object.keys(seeds)) {
            JSON.parse(await rawNix(['eval', '--json', `${locked}#seeds.${name}.meta`])) as unknown;
          }
        }),
      );
    }

    const line = rowPrinter(44);
    console.log(`bench/nix-eval: ${SEEDS} seeds, ${ROUNDS} rounds, medians`);
    line('wrapper evaluateSeeds (parse + validate)', `${median(wrapper).toFixed(1)} ms`);
    line('raw nix eval, same arguments', `${median(raw).toFixed(1)} ms`);
    line('ratio wrapper / raw (aim <= 1.1)', (median(wrapper) / median(raw)).toFixed(3));
    line(`one process for ${SEEDS} seeds`, `${median(oneProcess).toFixed(1)} ms`);
    line(`${SEEDS} processes, one per seed`, `${median(perSeed).toFixed(1)} ms`);
    line('speed-up of one process', `${(median(perSeed) / median(oneProcess)).toFixed(1)}x`);
  } finally {
    await repo.dispose();
  }
}

runBench('bench/nix-eval', main);
