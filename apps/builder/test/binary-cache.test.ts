// Images travel from the builder's store to a node's store only through the builder's
// signed binary cache, and a node trusting only the builder's key takes nothing else.
// Real nix on both ends: the builder builds through a nix-daemon of its own (sandboxed,
// a chroot store outside /nix), the "node" is another chroot store that substitutes over
// the builder's HTTP face, configured by substituterNixConfig.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REDIS_USERS } from '@seed/builds-queue';
import { NixClient, substituterNixConfig, type SigningKey } from '@seed/nix-eval';
import { FlakeRepo, type LocalNixDaemon, type LocalRedis } from '@seed/testing';
import type { BuildRecord } from '@seed/contracts';
import { loadBuilderConfig } from '../src/config';
import { startBuilderStack, type BuilderStack } from './builder-stack';
import type { FakeReconciler } from './fake-reconciler';
import {
  SEED_NIX_CONF,
  builderCredentialEnv,
  dependencyFlakeFiles,
  finished,
  getBuilds,
  type Pushes,
} from './harness';

const RUN = randomBytes(6).toString('hex');

let work: string;
let stack: BuilderStack;
let redis: LocalRedis;
let reconciler: FakeReconciler;
let url: string;
let pushes: Pushes;
let builderKey: SigningKey;
let otherKey: SigningKey;
let daemon: LocalNixDaemon;
const repos: FlakeRepo[] = [];

const nix = new NixClient({ confFile: SEED_NIX_CONF });

async function flakeWithDependency(name: string): Promise<FlakeRepo> {
  const repo = await FlakeRepo.create(await dependencyFlakeFiles(name, RUN));
  repos.push(repo);
  return repo;
}

async function build(repo: FlakeRepo): Promise<BuildRecord> {
  return finished(url, await pushes.push(repo, await repo.head()));
}

function imageOf(record: BuildRecord): string {
  const image = record.instances?.[0]?.image;
  if (image === undefined) throw new Error(`build ${record.id} has no image`);
  return image;
}

interface NixRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** nix as a node runs it: its own store, Seed's nix.conf, then NIX_CONFIG on top. */
function nodeNix(args: string[], nixConfig: string): Promise<NixRun> {
  return new Promise((resolve) => {
    execFile(
      'nix',
      ['--extra-experimental-features', 'nix-command flakes', ...args],
      {
        env: {
          ...process.env,
          NIX_USER_CONF_FILES: SEED_NIX_CONF,
          NIX_CONFIG: nixConfig,
          // The node's narinfo cache is its own, as on a real node.
          XDG_CACHE_HOME: path.join(work, `node-cache-${randomBytes(4).toString('hex')}`),
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A fresh node store substitutes `storePath` from the builder, trusting `publicKey` only. */
async function substitute(storePath: string, publicKey: string) {
  const store = await mkdtemp(path.join(work, 'node-store-'));
  const config = substituterNixConfig({ url: `${url}/nix-cache`, publicKeys: [publicKey] });
  const fetched = await nodeNix(['build', '--store', store, '--no-link', storePath], config);
  const listed = await nodeNix(['path-info', '--store', store, '--recursive', storePath], '');
  return {
    ...fetched,
    closure: listed.code === 0 ? listed.stdout.trim().split('\n').sort() : [],
  };
}

/** The closure of a flakeWithDependency image: the image and its dependency, nothing else. */
function expectImageClosure(closure: readonly string[], image: string, name: string): void {
  expect(closure).toHaveLength(2);
  expect(closure).toEqual(
    expect.arrayContaining([image, expect.stringMatching(new RegExp(`-seed-${name}-dep$`))]),
  );
}

/** The narinfo files of a closure in the builder's cache folder. */
function narinfos(closure: readonly string[]): string[] {
  return closure.map((storePath) =>
    path.join(work, 'cache', `${path.basename(storePath).slice(0, 32)}.narinfo`),
  );
}

/** What an attacker with write access to the cache folder (or a careless tool) could do. */
async function rewriteSignatures(
  closure: readonly string[],
  signWith: SigningKey | undefined,
): Promise<void> {
  for (const file of narinfos(closure)) {
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/^Sig: .*\n?/gm, ''));
  }
  if (signWith !== undefined) {
    const keyFile = path.join(work, `attacker-${randomBytes(4).toString('hex')}.sec`);
    await writeFile(keyFile, signWith.secretKey, { mode: 0o600 });
    await nix.signClosures(`file://${path.join(work, 'cache')}`, closure, keyFile);
  }
}

/** The closure as the builder's cache lists it (its narinfos' references). */
async function cachedClosure(image: string): Promise<string[]> {
  const listed = await nodeNix(
    ['path-info', '--store', `file://${path.join(work, 'cache')}`, '--recursive', image],
    '',
  );
  expect(listed.stderr).toBe('');
  return listed.stdout.trim().split('\n').sort();
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'seed-binary-cache-'));
  builderKey = await nix.generateSigningKey(`seed-builder-${RUN}`);
  otherKey = await nix.generateSigningKey(`seed-other-${RUN}`);
  await writeFile(path.join(work, 'builder.sec'), builderKey.secretKey, { mode: 0o600 });

  stack = await startBuilderStack({
    SEED_BUILDER_CONCURRENCY: '2',
    SEED_BINARY_CACHE_DIR: path.join(work, 'cache'),
    SEED_BINARY_CACHE_SECRET_KEY_FILE: path.join(work, 'builder.sec'),
  });
  ({ redis, reconciler, daemon, url, pushes } = stack);
  expect(stack.config.binaryCache).toMatchObject({
    enabled: true,
    publicKey: builderKey.publicKey,
  });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  await Promise.all(repos.map((repo) => repo.dispose()));
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('publishing', () => {
  it('publishes every image closure, signed by the builder, before handing the generation over', async () => {
    const repo = await flakeWithDependency('web');
    const record = await build(repo);
    expect(record).toMatchObject({
      state: 'succeeded',
      phases: { build: expect.any(Number), publish: expect.any(Number), apply: expect.any(Number) },
    });
    const image = imageOf(record);
    const log = record.log.join('\n');
    expect(log.indexOf('publishing 1 image closure(s)')).toBeGreaterThan(-1);
    expect(log.indexOf('publishing 1 image closure(s)')).toBeLessThan(
      log.indexOf('applying generation'),
    );
    expect(reconciler.generationsOf(repo.url())).toEqual([record.generation]);

    const closure = await cachedClosure(image);
    expectImageClosure(closure, image, 'web');
    const keyName = builderKey.publicKey.split(':')[0];
    for (const file of narinfos(closure)) {
      expect(await readFile(file, 'utf8')).toMatch(new RegExp(`^Sig: ${keyName}:`, 'm'));
    }
    // Built in the daemon's store: the host's /nix never saw it.
    expect(existsSync(image)).toBe(false);
    expect(existsSync(path.join(daemon.storeRoot, image))).toBe(true);
  });

  it('re-signs a closure the cache already held unsigned', async () => {
    const repo = await flakeWithDependency('api');
    const first = await build(repo);
    const image = imageOf(first);
    await rewriteSignatures(await cachedClosure(image), undefined);
    const second = await finished(
      url,
      await pushes.push(repo, await repo.commit({ 'README.md': 'docs only\n' })),
    );
    expect(second).toMatchObject({ state: 'succeeded', generation: first.generation });
    const node = await substitute(image, builderKey.publicKey);
    expect(node.stderr).not.toContain('not signed');
    expect(node.code).toBe(0);
  });

  it('retries a failed publish and hands the generation over only once published', async () => {
    const repo = await flakeWithDependency('jobs');
    const keyFile = path.join(work, 'builder.sec');
    await rename(keyFile, `${keyFile}.away`); // a Secret unmounted under a running builder
    let restored = false;
    try {
      const jobId = await pushes.push(repo, await repo.head());
      for (let waited = 0; ; waited += 100) {
        const record = (await (await getBuilds(`${url}/builds/${jobId}`)).json()) as BuildRecord;
        if (record.log?.some((line) => line.includes('publish error: publishing 1 image'))) {
          expect(record.error).toMatchObject({ kind: 'publish', retryable: true });
          expect(record.error?.message).toContain(path.join(work, 'cache'));
          break;
        }
        if (waited > 30_000) throw new Error(`publishing never failed: ${record.log?.join('\n')}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(reconciler.generationsOf(repo.url())).toEqual([]);
      await rename(`${keyFile}.away`, keyFile);
      restored = true;
      const record = await finished(url, jobId);
      expect(record.state).toBe('succeeded');
      expect(record.attempts).toBeGreaterThan(1);
      expect(reconciler.generationsOf(repo.url())).toEqual([record.generation]);
    } finally {
      if (!restored) await rename(`${keyFile}.away`, keyFile).catch(() => undefined);
    }
  });
});

describe('a node substituting from the builder', () => {
  it('fetches an image and its references with only the builder key trusted', async () => {
    const repo = await flakeWithDependency('shop');
    const image = imageOf(await build(repo));
    const node = await substitute(image, builderKey.publicKey);
    expect(node.code).toBe(0);
    expectImageClosure(node.closure, image, 'shop');
  });

  it('refuses the builder images when it trusts another key', async () => {
    const repo = await flakeWithDependency('blog');
    const image = imageOf(await build(repo));
    const node = await substitute(image, otherKey.publicKey);
    expect(node.code).not.toBe(0);
    expect(node.stderr).toContain('is not signed by any of the keys');
    expect(node.closure).toEqual([]);
  });

  it('refuses a path signed by another key', async () => {
    const repo = await flakeWithDependency('mail');
    const image = imageOf(await build(repo));
    // The cache's narinfos now carry only an attacker's signature.
    await rewriteSignatures(await cachedClosure(image), otherKey);
    const node = await substitute(image, builderKey.publicKey);
    expect(node.code).not.toBe(0);
    expect(node.stderr).toContain('is not signed by any of the keys');
    expect(node.closure).toEqual([]);
  });

  it('refuses an unsigned path', async () => {
    const repo = await flakeWithDependency('wiki');
    const image = imageOf(await build(repo));
    await rewriteSignatures(await cachedClosure(image), undefined);
    const node = await substitute(image, builderKey.publicKey);
    expect(node.code).not.toBe(0);
    expect(node.stderr).toContain('is not signed by any of the keys');
    expect(node.closure).toEqual([]);
  });
});

describe('the cache over HTTP', () => {
  let narinfo: string;
  let nar: string;

  beforeAll(async () => {
    const repo = await flakeWithDependency('docs');
    const image = imageOf(await build(repo));
    narinfo = `${path.basename(image).slice(0, 32)}.narinfo`;
    const text = await readFile(path.join(work, 'cache', narinfo), 'utf8');
    nar = /^URL: (nar\/\S+)$/m.exec(text)![1]!;
  });

  it('answers what nix asks for', async () => {
    const ready = await fetch(`${url}/readyz`);
    expect(await ready.json()).toMatchObject({ checks: { binaryCache: 'ok' } });
    const info = await fetch(`${url}/nix-cache/nix-cache-info`);
    expect(info.status).toBe(200);
    expect(await info.text()).toContain('StoreDir: /nix/store\n');
    const found = await fetch(`${url}/nix-cache/${narinfo}`);
    expect(found.status).toBe(200);
    expect(found.headers.get('content-type')).toContain('text/x-nix-narinfo');
    expect(await found.text()).toMatch(/^StorePath: \/nix\/store\//);
    const head = await fetch(`${url}/nix-cache/${nar}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
    const missing = await fetch(`${url}/nix-cache/${'0'.repeat(32)}.narinfo`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: expect.stringContaining('not in the binary cache'),
    });
  });

  it.each([
    ['a folder listing', '/nix-cache/'],
    ['a folder listing of nar/', '/nix-cache/nar/'],
    ['the signing key, one folder up', '/nix-cache/%2e%2e%2fbuilder.sec'],
    ['the signing key, from nar/', '/nix-cache/nar/%2e%2e%2f%2e%2e%2fbuilder.sec'],
    ['a narinfo through nar/', '/nix-cache/nar/%2e%2e%2fNARINFO'],
    ['a file that is not part of a cache', '/nix-cache/notes.txt'],
    ['a file nix is still writing', '/nix-cache/nar/NARFILE.tmp.12.1'],
    ['a symlink named like a narinfo', `/nix-cache/${'s'.repeat(32)}.narinfo`],
    ['a folder of the cache', '/nix-cache/log'],
  ])('refuses %s', async (_what, route) => {
    const cache = path.join(work, 'cache');
    await writeFile(path.join(cache, 'notes.txt'), 'not for nodes\n');
    await writeFile(path.join(cache, `${nar}.tmp.12.1`), 'partial');
    await symlink(
      path.join(work, 'builder.sec'),
      path.join(cache, `${'s'.repeat(32)}.narinfo`),
    ).catch(() => undefined);
    const response = await fetch(
      `${url}${route.replace('NARINFO', narinfo).replace('NARFILE', path.basename(nar))}`,
    );
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain(builderKey.secretKey);
  });
});

describe('configuration', () => {
  let env: Record<string, string>;
  beforeAll(async () => {
    env = await builderCredentialEnv();
  });

  it('says publishing is off when no signing key is set', () => {
    const config = loadBuilderConfig({
      ...env,
      ...redis.serviceEnv(REDIS_USERS.builder),
      SEED_BINARY_CACHE_DIR: path.join(work, 'cache'),
    });
    expect(config.binaryCache).toEqual({
      enabled: false,
      reason: expect.stringContaining('SEED_BINARY_CACHE_SECRET_KEY_FILE is not set'),
    });
  });

  it('names a bad key file and a missing folder at start', async () => {
    const redisEnv = redis.serviceEnv(REDIS_USERS.builder);
    const bad = path.join(work, 'bad.sec');
    await writeFile(bad, 'not-a-key');
    expect(() =>
      loadBuilderConfig({
        ...redisEnv,
        ...env,
        SEED_BINARY_CACHE_SECRET_KEY_FILE: bad,
        SEED_NIX_STORE: 'relative',
      }),
    ).toThrow(/SEED_BINARY_CACHE_SECRET_KEY_FILE.*not a nix secret signing key/s);
    expect(() =>
      loadBuilderConfig({
        ...redisEnv,
        ...env,
        SEED_BINARY_CACHE_SECRET_KEY_FILE: path.join(work, 'builder.sec'),
      }),
    ).toThrow(/SEED_BINARY_CACHE_DIR: required with SEED_BINARY_CACHE_SECRET_KEY_FILE/);
    expect(() =>
      loadBuilderConfig({
        ...redisEnv,
        ...env,
        SEED_BINARY_CACHE_SECRET_KEY_FILE: path.join(work, 'nope.sec'),
        SEED_BINARY_CACHE_DIR: path.join(work, 'cache'),
      }),
    ).toThrow(/SEED_BINARY_CACHE_SECRET_KEY_FILE.*cannot read it/s);
  });

  it('hands the lead a node configuration that trusts only the given key', () => {
    expect(
      substituterNixConfig({
        url: 'http://10.0.0.5:8081/nix-cache/',
        publicKeys: [builderKey.publicKey],
      }),
    ).toBe(
      [
        'substituters = http://10.0.0.5:8081/nix-cache',
        `trusted-public-keys = ${builderKey.publicKey}`,
        'require-sigs = true',
        'narinfo-cache-negative-ttl = 0',
        'connect-timeout = 10',
        '',
      ].join('\n'),
    );
    expect(() => substituterNixConfig({ url: 'http://x', publicKeys: [] })).toThrow(/key/);
  });
});
