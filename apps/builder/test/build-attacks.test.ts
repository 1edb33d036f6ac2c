// Attacks from a tenant's flake on the builder (docs/security.md, "Builds"): every
// derivation of every tenant builds through the builder's nix-daemon, in nix's sandbox as
// a build user, and the metas it evaluates build nothing and are read only up to a cap.
// The builder's nix.conf says `sandbox = false` (deploy/nix.conf): the daemon ignores
// that from an untrusted client, which these builds show too.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { BuildRecord } from '@seed/contracts';
import { DEFAULT_MAX_OUTPUT_BYTES } from '@seed/nix-eval';
import {
  demoFlakeFiles,
  FlakeRepo,
  type DemoSeed,
  type LocalNixDaemon,
  type LocalRedis,
} from '@seed/testing';
import { startBuilderStack, type BuilderStack } from './builder-stack';
import { SEED_NIX_CONF, finished, type Pushes } from './harness';

const run = promisify(execFile);
const RUN = randomBytes(6).toString('hex');
// What an attacker's script does first: nix gives builds no PATH, and the sandbox's only
// program is its /bin/sh (busybox, whose applets need none).
const TOOLS = 'export PATH=/usr/bin:/bin;';

let stack: BuilderStack;
let redis: LocalRedis;
let daemon: LocalNixDaemon;
let url: string;
let pushes: Pushes;
let scratch: string;
const repos: FlakeRepo[] = [];

async function push(
  seeds: Record<string, DemoSeed>,
  extraFiles: Record<string, string> = {},
): Promise<{ repo: FlakeRepo; record: BuildRecord }> {
  const repo = await FlakeRepo.create({ ...(await demoFlakeFiles(seeds)), ...extraFiles });
  repos.push(repo);
  return { repo, record: await finished(url, await pushes.push(repo, await repo.head())) };
}

/** What a build wrote to its image, read from the daemon's store. */
async function imageText(record: BuildRecord): Promise<string> {
  const image = record.instances?.[0]?.image;
  if (image === undefined)
    throw new Error(`build ${record.id} has no image: ${record.log.join('\n')}`);
  return readFile(path.join(daemon.storeRoot, image), 'utf8');
}

/** The store path of a flake's source, as the builder's nix locked it. */
async function sourcePath(repo: FlakeRepo): Promise<string> {
  const { stdout } = await run(
    'nix',
    ['--extra-experimental-features', 'nix-command flakes', '--store', daemon.storeUrl].concat([
      'flake',
      'metadata',
      '--json',
      repo.url(),
    ]),
    { env: { PATH: process.env.PATH, HOME: process.env.HOME, NIX_USER_CONF_FILES: SEED_NIX_CONF } },
  );
  return (JSON.parse(stdout) as { path: string }).path;
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'seed-build-attacks-'));
  await chmod(scratch, 0o777);
  stack = await startBuilderStack({ SEED_BUILDER_CONCURRENCY: '2' });
  ({ redis, daemon, url, pushes } = stack);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  await Promise.all(repos.map((repo) => repo.dispose()));
  await rm(scratch, { recursive: true, force: true });
});

describe("one tenant's build against another's store paths", () => {
  let victimSource: string;
  let victimImage: string;
  const secret = `victim-secret-${RUN}`;

  beforeAll(async () => {
    const { repo, record } = await push(
      { web: { build: `echo victim ${RUN} > $out` } },
      { 'secret.txt': `${secret}\n` },
    );
    expect(record.state).toBe('succeeded');
    victimSource = await sourcePath(repo);
    victimImage = record.instances![0]!.image;
    expect(await readFile(path.join(daemon.storeRoot, victimSource, 'secret.txt'), 'utf8')).toBe(
      `${secret}\n`,
    );
  });

  it("attack: a build reads another tenant's source outside its inputs", async () => {
    // Before (no sandbox, builds as root): the image held the victim's secret.
    const { record } = await push({
      web: { build: `echo ${RUN}; ${TOOLS} cat ${victimSource}/secret.txt > $out 2>&1; true` },
    });
    expect(record.state).toBe('succeeded');
    const seen = await imageText(record);
    expect(seen).not.toContain(secret);
    expect(seen).toContain('No such file or directory');
  });

  it("attack: a build writes into another tenant's store path", async () => {
    // Before: both writes succeeded; the victim's image and source were rewritten.
    const { record } = await push({
      web: {
        build: [
          `echo ${RUN}`,
          `(echo pwned > ${victimImage}) 2>> $out`,
          `(echo pwned > ${victimSource}/secret.txt) 2>> $out`,
          'echo done >> $out',
        ].join('; '),
      },
    });
    expect(record.state).toBe('succeeded');
    // The victim's image path is not in this sandbox: writing it made a file in the
    // sandbox's own /nix/store, gone with the sandbox. Its source folder is not there at all.
    expect(await imageText(record)).toContain(
      `can't create ${victimSource}/secret.txt: nonexistent directory`,
    );
    expect(await readFile(path.join(daemon.storeRoot, victimImage), 'utf8')).toBe(
      `victim ${RUN}\n`,
    );
    expect(await readFile(path.join(daemon.storeRoot, victimSource, 'secret.txt'), 'utf8')).toBe(
      `${secret}\n`,
    );
  });
});

it('attack: a build reaches Redis over loopback', async () => {
  // Before: `-NOAUTH Authentication required.`, Redis's answer (and a password would have
  // been tried next).
  const { record } = await push({
    web: {
      build: `echo ${RUN}; ${TOOLS} printf 'PING\\r\\n' | busybox nc -w 2 127.0.0.1 ${redis.port} > $out 2>&1; echo "exit $?" >> $out`,
    },
  });
  expect(record.state).toBe('succeeded');
  const seen = await imageText(record);
  expect(seen).not.toContain('NOAUTH');
  expect(seen).toContain('Connection refused');
});

it('attack: a build writes to the host outside the store', async () => {
  // Before: the file appeared on the host, owned by root.
  const target = path.join(scratch, `escaped-${RUN}`);
  const { record } = await push({
    web: { build: `echo ${RUN}; (echo escaped > ${target}) 2> $out; echo done >> $out` },
  });
  expect(record.state).toBe('succeeded');
  expect(existsSync(target)).toBe(false);
  expect(await imageText(record)).toContain(`can't create ${target}: nonexistent directory`);
});

it('attack: a meta that imports from a derivation builds nothing during evaluation', async () => {
  // Before: the derivation was built while evaluating the meta (its marker appeared on the
  // host), then the meta it produced was validated.
  const marker = path.join(scratch, `ifd-ran-${RUN}`);
  const ifd = `derivation { name = "ifd-${RUN}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo ran > ${marker}; echo '{ }' > $out" ]; }`;
  const { record } = await push({ web: { metaExpression: `import (${ifd})` } });
  expect(record.state).toBe('failed');
  expect(record.error).toMatchObject({ kind: 'evaluation', retryable: false });
  expect(record.error?.message).toMatch(
    /cannot build '\/nix\/store\/[^']+-ifd-[0-9a-f]+\.drv' during evaluation because the option 'allow-import-from-derivation' is disabled/,
  );
  expect(existsSync(marker)).toBe(false);
});

it('attack: an oversized meta fails output-limit without being parsed', async () => {
  // Before: nix's 6 MB of JSON was parsed in the builder (a cap of 64 MiB), then refused
  // by validation; `genList (_: {}) 20000000`, 60 MB, made the builder hold 2e7 objects.
  const { record } = await push({ web: { metaExpression: 'builtins.genList (_: { }) 2000000' } });
  expect(record.state).toBe('failed');
  expect(record.error).toMatchObject({ kind: 'output-limit', retryable: false });
  expect(record.error?.message).toContain(`more than ${DEFAULT_MAX_OUTPUT_BYTES} bytes`);
});
