import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { demoFlakeFiles, flakeToolsDir, FlakeRepo, type DemoSeed } from '@seed/testing';
import { deriveNamespace } from '@seed/contracts';
import { NixClient, NixError, publicKeyOf } from '../src';

// Real nix on real git repositories; Seed's nix.conf when setup installed it.
const nix = new NixClient({ confFile: process.env.SEED_NIX_CONF ?? '/etc/seed/nix.conf' });
const repos: FlakeRepo[] = [];

async function flakeRepo(seeds: Record<string, DemoSeed>): Promise<FlakeRepo> {
  const repo = await FlakeRepo.create(await demoFlakeFiles(seeds));
  repos.push(repo);
  return repo;
}

async function failure(promise: Promise<unknown>): Promise<NixError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof NixError) return error;
    throw error;
  }
  throw new Error('expected the nix call to fail');
}

afterAll(async () => {
  await Promise.all(repos.map((repo) => repo.dispose()));
});

it('reports the nix version', async () => {
  expect(await nix.version()).toMatch(/^nix \(Nix\) \d+\.\d+/);
});

describe('a flake with several seeds', () => {
  const seeds: Record<string, DemoSeed> = {
    web: { seed: { expose: { http: 8080 }, storage: { data: '1Gi' } } },
    dns: { seed: { size: 'xs', expose: { dns: { port: 53, protocol: 'dns' } } } },
    worker: {
      seed: {
        size: 'l',
        connect: { db: { service: 'postgres', port: 5432 }, cache: 'redis' },
        strategy: 'rolling',
        shoot: { enable: true },
      },
    },
  };
  let repo: FlakeRepo;
  let revision: string;

  beforeAll(async () => {
    repo = await flakeRepo(seeds);
    revision = (await nix.resolve(repo.url())).revision!;
  });

  it('locks the reference to its head revision', async () => {
    const locked = await nix.resolve(repo.url());
    expect(locked.revision).toMatch(/^[0-9a-f]{40}$/);
    expect(locked.url).toContain(`rev=${locked.revision}`);
    expect(locked.narHash).toMatch(/^sha256-/);
  });

  it('evaluates every seed in one process into validated metas', async () => {
    const evaluated = await nix.evaluateSeeds(repo.url(revision));
    expect(evaluated.map((seed) => seed.name)).toEqual(['dns', 'web', 'worker']);
    const [dns, web, worker] = evaluated;
    expect(web!.meta).toEqual({
      name: 'web',
      system: 'x86_64-linux',
      size: 's',
      resources: { vcpus: 1, memory: 1024 },
      expose: { http: { port: 8080, protocol: 'http' } },
      storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
      connect: {},
      rollout: 'recreate',
      shoot: { enable: false },
      tpm: false,
    });
    expect(dns!.meta.resources).toEqual({ vcpus: 1, memory: 512 });
    expect(dns!.meta.expose.dns).toEqual({ port: 53, protocol: 'dns' });
    expect(worker!.meta).toMatchObject({
      resources: { vcpus: 4, memory: 4096 },
      connect: { db: { service: 'postgres', port: 5432 }, cache: { service: 'redis', port: null } },
      rollout: 'rolling',
      shoot: { enable: true },
    });
    for (const seed of evaluated) expect(seed.imageDrv).toMatch(/^\/nix\/store\/.+\.drv$/);
  });

  it('builds every image in one nix build and maps each to its seed', async () => {
    const built = await nix.buildImages(await nix.evaluateSeeds(repo.url(revision)));
    for (const seed of built) {
      expect(seed.image).toMatch(new RegExp(`^/nix/store/[0-9a-z]{32}-seed-${seed.name}-image$`));
      expect((await readFile(seed.image, 'utf8')).trim()).toBe(seed.name);
    }
  });

  it('gives the same store paths and generation for the same revision', async () => {
    const first = await nix.inspect(repo.url(), { revision });
    const second = await nix.inspect(repo.url(), { revision, branch: 'main' });
    expect(second.generation).toBe(first.generation);
    expect(second.seeds.map((s) => s.image)).toEqual(first.seeds.map((s) => s.image));
    expect(first.generation).toMatch(/^[0-9a-f]{12}$/);
    expect(first.namespace).toBe(deriveNamespace(repo.url()));
    expect(first.flake.revision).toBe(revision);
  });

  it('changes the generation for a changed closure and for a meta-only change', async () => {
    const base = await nix.inspect(repo.url());
    await repo.commit(
      await demoFlakeFiles({ ...seeds, web: { ...seeds.web, build: 'echo web v2 > $out' } }),
    );
    const closure = await nix.inspect(repo.url());
    await repo.commit(
      await demoFlakeFiles({ ...seeds, web: { seed: { ...seeds.web!.seed, size: 'm' } } }),
    );
    const metaOnly = await nix.inspect(repo.url());

    const image = (inspection: typeof base) =>
      inspection.seeds.find((s) => s.name === 'web')!.image;
    expect(image(closure)).not.toBe(image(base));
    expect(closure.generation).not.toBe(base.generation);
    expect(image(metaOnly)).toBe(image(base));
    expect(metaOnly.generation).not.toBe(base.generation);
    expect(metaOnly.generation).not.toBe(closure.generation);
  });

  it('runs concurrent evaluations of different revisions', async () => {
    const revisions = [revision];
    for (const size of ['xs', 'm', 'xl']) {
      revisions.push(
        await repo.commit(await demoFlakeFiles({ ...seeds, web: { seed: { size } } })),
      );
    }
    const results = await Promise.all(revisions.map((rev) => nix.evaluateSeeds(repo.url(rev))));
    expect(results.map((seedsOf) => seedsOf.find((s) => s.name === 'web')!.meta.size)).toEqual([
      's',
      'xs',
      'm',
      'xl',
    ]);
  });
});

describe('failures', () => {
  it('reports an unknown revision as a fetch error that will not heal by retrying', async () => {
    const repo = await flakeRepo({ web: {} });
    const error = await failure(nix.resolve(repo.url('0123456789abcdef0123456789abcdef01234567')));
    expect(error.kind).toBe('fetch');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('Cannot find Git revision');
  });

  it('reports a missing repository as a retryable fetch error', async () => {
    const error = await failure(nix.resolve('git+file:///nonexistent/seed-repo'));
    expect(error.kind).toBe('fetch');
    expect(error.retryable).toBe(true);
  });

  it('reports a syntax error with its location in the flake', async () => {
    const repo = await flakeRepo({ web: {} });
    await repo.commit({
      'flake.nix': '{\n  outputs = { self }: {\n    seeds = { web = ; };\n  };\n}\n',
    });
    const error = await failure(nix.evaluateSeeds(repo.url()));
    expect(error.kind).toBe('evaluation');
    expect(error.message).toContain('syntax error');
    expect(error.location).toBe('flake.nix:3:21');
  });

  it('reports an evaluation error with message and location', async () => {
    const repo = await flakeRepo({ web: { metaExpression: '1 + "one"' } });
    const error = await failure(nix.evaluateSeeds(repo.url()));
    expect(error.kind).toBe('evaluation');
    expect(error.message).toBe('cannot add a string to an integer');
    expect(error.location).toMatch(/^flake\.nix:\d+:\d+$/);
  });

  it('reports an invalid seed option as a validation error naming it', async () => {
    const repo = await flakeRepo({ web: { seed: { expose: { http: 70000 } } } });
    const error = await failure(nix.evaluateSeeds(repo.url()));
    expect(error.kind).toBe('validation');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/^seed\.expose\.http\.port: /);
  });

  it('reports a meta that breaks the schema by its path', async () => {
    const repo = await flakeRepo({
      web: {
        metaExpression:
          '(seedMetaOf { inherit lib; name = "web"; module = { }; }) // { size = "huge"; }',
      },
    });
    const error = await failure(nix.evaluateSeeds(repo.url()));
    expect(error.kind).toBe('validation');
    expect(error.message).toContain('seeds.web.meta.size: ');
  });

  it("refuses a flake with more instances than Seed's limit, naming it", async () => {
    const seeds = Object.fromEntries(
      Array.from({ length: 65 }, (_, i) => [`i${i}`, {} satisfies DemoSeed]),
    );
    const error = await failure(nix.evaluateSeeds((await flakeRepo(seeds)).url()));
    expect(error.kind).toBe('validation');
    expect(error.message).toBe("seeds: 65 instances; a flake may have at most 64 (Seed's limit)");
  });

  it('reports a flake without seeds', async () => {
    const repo = await flakeRepo({});
    await repo.commit({ 'flake.nix': '{ outputs = { self }: { packages = {}; }; }\n' });
    const error = await failure(nix.evaluateSeeds(repo.url()));
    expect(error.kind).toBe('evaluation');
    expect(error.message).toContain('does not provide attribute');
  });

  it('reports a failing build with its derivation and the tail of its log', async () => {
    const build =
      'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo step $i; done; echo boom >&2; exit 3';
    const repo = await flakeRepo({ web: {}, broken: { build } });
    const error = await failure(nix.buildImages(await nix.evaluateSeeds(repo.url())));
    expect(error.kind).toBe('build');
    expect(error.derivation).toMatch(/-seed-broken-image\.drv$/);
    expect(error.message).toContain('failed with exit code 3');
    expect(error.logTail?.at(-1)).toBe('boom');
    expect(error.logTail).toContain('step 12');
  });
});

describe('limits', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'seed-hung-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  // The builder records its pid, then hangs; nix runs it in a session of its own.
  async function hungBuild(tag: string) {
    const pidFile = path.join(scratch, `${tag}.pid`);
    const repo = await flakeRepo({
      hung: { build: `echo ${tag}; echo $$ > ${pidFile}; exec /bin/sleep 600` },
    });
    return { seeds: await nix.evaluateSeeds(repo.url()), pidFile };
  }

  async function builderPid(pidFile: string): Promise<number> {
    for (let waited = 0; !existsSync(pidFile); waited += 50) {
      if (waited > 20_000) throw new Error('the builder never started');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return Number((await readFile(pidFile, 'utf8')).trim());
  }

  // SIGKILL is delivered at once but the process may take a moment to go away on a busy
  // machine; a zombie waiting for init to reap it counts as dead.
  async function goneSoon(pid: number): Promise<boolean> {
    for (const deadline = Date.now() + 5_000; Date.now() < deadline;) {
      if (!alive(pid)) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return !alive(pid);
  }

  function alive(pid: number): boolean {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  }

  it('kills a hung build, builder included, at its timeout', async () => {
    const { seeds, pidFile } = await hungBuild(`timeout-${Date.now()}`);
    const pending = failure(nix.buildImages(seeds, { timeoutMs: 3_000 }));
    const pid = await builderPid(pidFile);
    const error = await pending;
    expect(error.kind).toBe('timeout');
    expect(error.retryable).toBe(true);
    expect(await goneSoon(pid)).toBe(true);
  });

  it('kills the process tree when the caller aborts', async () => {
    const { seeds, pidFile } = await hungBuild(`abort-${Date.now()}`);
    const controller = new AbortController();
    const pending = failure(nix.buildImages(seeds, { signal: controller.signal }));
    const pid = await builderPid(pidFile);
    controller.abort();
    const error = await pending;
    expect(error.kind).toBe('aborted');
    expect(await goneSoon(pid)).toBe(true);
  });

  it('caps what nix may print', async () => {
    const repo = await flakeRepo({ web: {}, api: {}, db: {} });
    const capped = new NixClient({
      confFile: process.env.SEED_NIX_CONF ?? '/etc/seed/nix.conf',
      maxOutputBytes: 100,
    });
    const error = await failure(capped.evaluateSeeds(repo.url()));
    expect(error.kind).toBe('output-limit');
  });

  it('refuses a reference Seed does not accept without running nix', async () => {
    const error = await failure(nix.evaluateSeeds('https://example.org/app.git'));
    expect(error.kind).toBe('invalid-reference');
  });
});

describe('a flake whose images are real nix-snapshotter images', () => {
  // The fixtures' option for the image format mkSeed's images have (nix/offline-image.nix),
  // built from the flake tools scripts/setup prepares; skipped, saying why, without them.
  let tools: string | undefined;

  beforeAll(async () => {
    try {
      tools = await flakeToolsDir();
    } catch (error) {
      console.warn(`skipping real images: ${(error as { message?: string }).message}`);
    }
  }, 30 * 60_000);

  it('builds an OCI archive per seed whose store path changes with its content', async () => {
    if (tools === undefined) return;
    const seeds: Record<string, DemoSeed> = { web: { seed: { expose: { http: 8080 } } }, api: {} };
    const repo = await FlakeRepo.create(await demoFlakeFiles(seeds, { tools }));
    repos.push(repo);
    const first = await nix.inspect(repo.url());
    expect(first.seeds.map((seed) => [seed.name, path.basename(seed.image).slice(33)])).toEqual([
      ['api', 'nix-image-seed-api.tar'],
      ['web', 'nix-image-seed-web.tar'],
    ]);
    const index = JSON.parse(
      execFileSync('tar', ['-xOf', first.seeds[1]!.image, 'index.json']).toString(),
    ) as { manifests: { annotations: Record<string, string> }[] };
    expect(index.manifests[0]!.annotations['io.containerd.image.name']).toBe(
      `nix:0${first.seeds[1]!.image}:latest`,
    );

    await repo.commit(
      await demoFlakeFiles(
        { ...seeds, web: { ...seeds.web, build: 'echo web v2 > $out' } },
        { tools },
      ),
    );
    const second = await nix.inspect(repo.url());
    expect(second.seeds[0]!.image).toBe(first.seeds[0]!.image);
    expect(second.seeds[1]!.image).not.toBe(first.seeds[1]!.image);
  }, 120_000);
});

describe('stores and signing keys', () => {
  it('derives the public key of a signing key as nix does', async () => {
    const key = await nix.generateSigningKey('seed-test-key');
    expect(key.secretKey).toMatch(/^seed-test-key:/);
    const { execFileSync } = await import('node:child_process');
    const converted = execFileSync(
      'nix',
      ['--extra-experimental-features', 'nix-command', 'key', 'convert-secret-to-public'],
      { input: key.secretKey },
    ).toString();
    expect(key.publicKey).toBe(converted.trim());
    expect(() => publicKeyOf('seed-test-key:AAAA')).toThrow(NixError);
  });

  it('runs every step in the store it is given, garbage collection included', async () => {
    if (!existsSync('/bin/busybox')) {
      process.stdout.write(
        'skipped: a chroot store builds in the sandbox, which needs /bin/busybox\n',
      );
      return;
    }
    const scratch = await mkdtemp(path.join(tmpdir(), 'seed-nix-store-'));
    try {
      const conf = path.join(scratch, 'nix.conf');
      const seedConf = process.env.SEED_NIX_CONF ?? '/etc/seed/nix.conf';
      await writeFile(
        conf,
        `${await readFile(seedConf, 'utf8')}\nsandbox-paths = /bin/sh=/bin/busybox\n`,
      );
      const store = path.join(scratch, 'store');
      const chroot = new NixClient({ confFile: conf, store });
      const repo = await flakeRepo({ web: { build: `/bin/sleep 0; echo ${scratch} > $out` } });
      const [seed] = await chroot.buildImages(
        await chroot.evaluateSeeds((await chroot.resolve(repo.url())).url),
      );
      expect(existsSync(path.join(store, seed!.image))).toBe(true);
      expect(existsSync(seed!.image)).toBe(false);
      const cache = path.join(scratch, 'cache');
      await chroot.copyClosures([seed!.image], `file://${cache}`);
      expect(
        existsSync(path.join(cache, `${path.basename(seed!.image).slice(0, 32)}.narinfo`)),
      ).toBe(true);
      const failed = await failure(
        chroot.copyClosures([seed!.image], `file://${cache}?secret-key=${scratch}/none`),
      );
      expect(failed).toMatchObject({ kind: 'nix', retryable: true });

      // An out-link roots what a build made; collecting takes what nothing roots.
      await repo.commit(await demoFlakeFiles({ web: { build: `echo kept ${scratch} > $out` } }));
      const outLink = path.join(scratch, 'roots', 'image');
      const [kept] = await chroot.buildImages(
        await chroot.evaluateSeeds((await chroot.resolve(repo.url())).url),
        { outLink },
      );
      expect(readlinkSync(outLink)).toBe(kept!.image);
      const collected = await chroot.collectGarbage();
      expect(collected.deletedPaths).toBeGreaterThanOrEqual(1);
      expect(existsSync(path.join(store, seed!.image))).toBe(false);
      expect(existsSync(path.join(store, kept!.image))).toBe(true);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
