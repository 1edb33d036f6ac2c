// The builder's stores do not fill the disk: the real BuildService builds toy generations
// through the real nix (a nix-daemon of this test's own, a chroot store outside /nix) into
// a real signed binary cache, and the builder's collection then keeps the closures of each
// flake's last generations, in the store and in the cache, and nothing else.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildJobId, type BuildJob } from '@seed/contracts';
import { NixClient } from '@seed/nix-eval';
import { StoreGcSchedule, createLogger } from '@seed/service-kit';
import { FlakeRepo, type LocalNixDaemon } from '@seed/testing';
import { BuildService } from '../src/build.service';
import { GenerationRoots } from '../src/generation-roots';
import { BuilderMetrics, storeFolder } from '../src/metrics';
import { FileBinaryCache } from '../src/repositories/binary-cache.repository';
import { StoreKeeper } from '../src/store-keeper';
import {
  InMemoryBuildRecords,
  InMemoryHistory,
  RecordingSink,
  RecordingStatuses,
} from './fast/in-memory-ports';
import { startBuilderStack } from './builder-stack';
import { loadBuilderConfig } from '../src/config';
import {
  SEED_NIX_CONF,
  builderCredentialEnv,
  builderNix,
  dependencyFlakeFiles,
  finished,
} from './harness';

const RUN = randomBytes(6).toString('hex');
const KEEP = 2;
const logger = createLogger('builder', 'silent');

let daemon: LocalNixDaemon;
let work: string;
let nix: NixClient;
let cacheDir: string;
let keeper: StoreKeeper;
let metrics: BuilderMetrics;
let service: BuildService;
const repos: FlakeRepo[] = [];

/** nix against the test's daemon, for what the builder never asks (closures, stray paths). */
async function nixCli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(
    'nix',
    ['--extra-experimental-features', 'nix-command', '--store', daemon.storeUrl, ...args],
    { env: { ...process.env, NIX_USER_CONF_FILES: SEED_NIX_CONF } },
  );
  return stdout;
}

/** Builds the flake at a new commit whose image prints `tag`; the image's closure (2 paths). */
async function push(repo: FlakeRepo, tag: string): Promise<string[]> {
  const commit = await repo.commit(await dependencyFlakeFiles('web', `${RUN}-${tag}`));
  const job: BuildJob = {
    flake: repo.url(),
    commit,
    ref: 'refs/heads/main',
    forge: 'github',
    deliveryId: `delivery-${tag}`,
    receivedAt: new Date().toISOString(),
    forced: true,
  };
  const record = await service.run(job, {
    jobId: buildJobId(job.flake, commit),
    attempt: 1,
    finalAttempt: true,
    signal: new AbortController().signal,
  });
  expect(record.state).toBe('succeeded');
  const image = record.instances![0]!.image;
  return (await nixCli('path-info', '--recursive', image)).trim().split('\n').sort();
}

/** A path nothing roots: what a collection must take. */
async function strayPath(): Promise<string> {
  const file = path.join(work, `stray-${randomBytes(4).toString('hex')}`);
  await writeFile(file, randomBytes(64 * 1024));
  return (await nixCli('store', 'add-file', file)).trim();
}

const inStore = (storePath: string) => existsSync(path.join(daemon.storeRoot, storePath));
const inCache = (storePath: string) =>
  existsSync(path.join(cacheDir, `${path.basename(storePath).slice(0, 32)}.narinfo`));

beforeAll(async () => {
  daemon = (await builderNix()).daemon;
  work = await mkdtemp(path.join(tmpdir(), 'seed-store-gc-'));
  nix = new NixClient({ confFile: SEED_NIX_CONF, store: daemon.storeUrl });
  const key = await nix.generateSigningKey(`seed-gc-${RUN}`);
  const keyFile = path.join(work, 'cache.sec');
  await writeFile(keyFile, key.secretKey, { mode: 0o600 });
  cacheDir = path.join(work, 'cache');
  const cache = new FileBinaryCache(nix, {
    dir: cacheDir,
    secretKeyFile: keyFile,
    compression: 'zstd',
    timeoutMs: 120_000,
  });
  const storeDir = storeFolder(daemon.storeUrl);
  keeper = new StoreKeeper(
    new GenerationRoots({
      dir: path.join(work, 'roots'),
      keep: KEEP,
      unsealedMaxAgeMs: 60 * 60_000,
    }),
    { nix, dir: storeDir },
    cache,
    logger,
  );
  metrics = new BuilderMetrics([storeDir, cacheDir]);
  service = new BuildService(
    nix,
    cache,
    keeper,
    new RecordingSink(),
    new InMemoryHistory(),
    new InMemoryBuildRecords(),
    new RecordingStatuses(),
    metrics,
    logger,
    { logBytes: 64 * 1024, cancelSuperseded: false, supersedePollMs: 60_000 },
  );
}, 120_000);

afterAll(async () => {
  for (const repo of repos) await repo.dispose();
  await daemon?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

async function newRepo(): Promise<FlakeRepo> {
  const repo = await FlakeRepo.create({});
  repos.push(repo);
  return repo;
}

describe('store garbage collection (real nix, a store of its own)', () => {
  it("keeps each flake's last generations' closures in the store and the cache, and nothing else", async () => {
    const shop = await newRepo();
    const blog = await newRepo();
    const first = await push(shop, 'one');
    const second = await push(shop, 'two');
    const third = await push(shop, 'three');
    // The second generation again (a rollback): kept once, as the newest; the first is
    // now past the last two.
    expect(await push(shop, 'two')).toEqual(second);
    const other = await push(blog, 'blog');
    const stray = await strayPath();
    for (const storePath of [...first, ...second, ...third, ...other]) {
      expect(inStore(storePath)).toBe(true);
      expect(inCache(storePath)).toBe(true);
    }

    const outcomes = await keeper.collect('schedule');

    for (const storePath of [...second, ...third, ...other]) {
      expect({ storePath, inStore: inStore(storePath), inCache: inCache(storePath) }).toEqual({
        storePath,
        inStore: true,
        inCache: true,
      });
    }
    for (const storePath of first) {
      expect({ storePath, inStore: inStore(storePath), inCache: inCache(storePath) }).toEqual({
        storePath,
        inStore: false,
        inCache: false,
      });
    }
    expect(inStore(stray)).toBe(false);
    // Every NAR left is one a narinfo left names: none orphaned, none missing.
    const narinfos = (await readdir(cacheDir)).filter((file) => file.endsWith('.narinfo'));
    const named = await Promise.all(
      narinfos.map(
        async (file) => /^URL: (\S+)$/m.exec(await readFile(path.join(cacheDir, file), 'utf8'))![1],
      ),
    );
    const nars = (await readdir(path.join(cacheDir, 'nar'))).map((nar) => `nar/${nar}`);
    expect(nars.sort()).toEqual([...new Set(named)].sort());
    expect(outcomes.map((outcome) => outcome.store)).toEqual([
      storeFolder(daemon.storeUrl),
      cacheDir,
    ]);
    expect(outcomes[0]!.deletedPaths).toBeGreaterThanOrEqual(first.length + 1);
    expect(outcomes[1]!.deletedPaths).toBe(first.length);
    expect(outcomes[1]!.freedBytes).toBeGreaterThan(0);

    // What is kept still substitutes: the kept images are whole in the cache.
    const image = third.find((storePath) => storePath.endsWith('-seed-web-image'))!;
    const listed = await nixCli('path-info', '--store', `file://${cacheDir}`, '--recursive', image);
    expect(listed.trim().split('\n').sort()).toEqual(third);
  }, 300_000);

  it('collects at once when a store runs short of space, and counts it by trigger', async () => {
    const options = {
      folders: keeper.folders,
      intervalMs: 60 * 60_000,
      checkMs: 60_000,
    };
    const stray = await strayPath();
    const relaxed = new StoreGcSchedule(
      keeper.collect,
      metrics.gc,
      { ...options, minFreePercent: 0 },
      logger,
    );
    expect(await relaxed.check()).toBeUndefined();
    expect(inStore(stray)).toBe(true);

    // No filesystem has all of itself free: 100 % is pressure everywhere.
    const pressed = new StoreGcSchedule(
      keeper.collect,
      metrics.gc,
      { ...options, minFreePercent: 100 },
      logger,
    );
    expect(await pressed.check()).toBe('disk-pressure');
    expect(inStore(stray)).toBe(false);

    const text = await metrics.registry.metrics();
    expect(text).toContain(
      'seed_builder_store_gc_runs_total{trigger="disk-pressure",result="ok"} 1',
    );
    expect(text).toContain('seed_builder_store_gc_runs_total{trigger="schedule",result="ok"} 0');
    const freed = new RegExp(
      `seed_builder_store_gc_freed_bytes_total\\{store="${storeFolder(daemon.storeUrl)}"\\} (\\d+)`,
    ).exec(text);
    expect(Number(freed?.[1])).toBeGreaterThan(0);
    for (const store of keeper.folders) {
      expect(text).toMatch(
        new RegExp(`seed_builder_store_filesystem_used_bytes\\{store="${store}"\\} [1-9]`),
      );
    }
  }, 120_000);
});

describe('the builder as its environment configures it', () => {
  it("collects its store and cache under disk pressure, keeping each flake's last generation", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'seed-store-gc-app-'));
    const signing = await nix.generateSigningKey(`seed-gc-app-${RUN}`);
    await writeFile(path.join(dir, 'cache.sec'), signing.secretKey, { mode: 0o600 });
    const stack = await startBuilderStack({
      SEED_BINARY_CACHE_DIR: path.join(dir, 'cache'),
      SEED_BINARY_CACHE_SECRET_KEY_FILE: path.join(dir, 'cache.sec'),
      SEED_KEEP_GENERATIONS: '1',
      // Every filesystem is short of 100 % free: a collection at every check.
      SEED_GC_MIN_FREE_PERCENT: '100',
      SEED_GC_CHECK_MS: '200',
    });
    try {
      const storeFile = (storePath: string) => path.join(stack.daemon.storeRoot, storePath);
      const narinfo = (storePath: string) =>
        path.join(dir, 'cache', `${path.basename(storePath).slice(0, 32)}.narinfo`);
      const repo = await newRepo();
      const images: string[] = [];
      for (const tag of ['app-one', 'app-two']) {
        const commit = await repo.commit(await dependencyFlakeFiles('web', `${RUN}-${tag}`));
        const record = await finished(stack.url, await stack.pushes.push(repo, commit));
        expect(record.state).toBe('succeeded');
        images.push(record.instances![0]!.image);
      }
      const [older, newer] = images as [string, string];
      const deadline = Date.now() + 30_000;
      while ((existsSync(storeFile(older)) || existsSync(narinfo(older))) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 200));
      expect([existsSync(storeFile(older)), existsSync(narinfo(older))]).toEqual([false, false]);
      expect([existsSync(storeFile(newer)), existsSync(narinfo(newer))]).toEqual([true, true]);
      const metrics = await (await fetch(`${stack.url}/metrics`)).text();
      expect(metrics).toMatch(
        /seed_builder_store_gc_runs_total\{trigger="disk-pressure",result="ok"\} [1-9]/,
      );
    } finally {
      await stack.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

describe('configuration', () => {
  it('names every bad garbage-collection setting at start, and roots beside the cache', async () => {
    const passwordFile = path.join(work, 'redis-password');
    await writeFile(passwordFile, 'a-password-for-the-config-only');
    const env = { ...(await builderCredentialEnv()), SEED_REDIS_PASSWORD_FILE: passwordFile };
    let message = '';
    try {
      loadBuilderConfig({
        ...env,
        SEED_KEEP_GENERATIONS: '0',
        SEED_GC_INTERVAL_MS: 'hourly',
        SEED_GC_MIN_FREE_PERCENT: '150',
        SEED_GC_ROOTS_DIR: 'relative/roots',
      });
    } catch (error) {
      message = (error as Error).message;
    }
    for (const name of [
      'SEED_KEEP_GENERATIONS',
      'SEED_GC_INTERVAL_MS',
      'SEED_GC_MIN_FREE_PERCENT="150": expected a percentage',
      'SEED_GC_ROOTS_DIR',
    ])
      expect(message).toContain(name);

    const config = loadBuilderConfig({ ...env, SEED_BINARY_CACHE_DIR: path.join(work, 'c') });
    expect(config.gc).toMatchObject({
      rootsDir: path.join(work, 'c', 'gc-roots'),
      keepGenerations: 5,
      intervalMs: 3_600_000,
      minFreePercent: 15,
      checkMs: 60_000,
    });
  });
});
