import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { demoFlakeFiles, FlakeRepo } from '@seed/testing';
import { seed } from './seed-cli';

describe('seed inspect', () => {
  let repo: FlakeRepo;
  let first: string;

  beforeAll(async () => {
    repo = await FlakeRepo.create(
      await demoFlakeFiles({
        web: { seed: { expose: { http: 8080 }, storage: { data: '1Gi' } } },
        db: { seed: { size: 'm', connect: { backup: 'minio' } } },
      }),
    );
    first = await repo.commit(await demoFlakeFiles({ web: { seed: { size: 'xs' } } }));
    await repo.commit(
      await demoFlakeFiles({
        web: { seed: { expose: { http: 8080 }, storage: { data: '1Gi' } } },
        db: { seed: { size: 'm', connect: { backup: 'minio' } } },
      }),
    );
  });

  afterAll(async () => {
    await repo.dispose();
  });

  it('prints instances, closures and generation', async () => {
    const { code, out, err } = await seed(['inspect', repo.url()]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/^generation\s+[0-9a-f]{12}$/m);
    expect(out).toMatch(
      /^web\s+s \(1 vCPU, 1024 MiB\)\s+recreate\s+http=8080\/http\s+data=1Gi@\/seed\/storage\/data/m,
    );
    expect(out).toMatch(/^db\s+m \(2 vCPU, 2048 MiB\).*backup=minio/m);
    expect(out).toMatch(/^web\s+\/nix\/store\/[0-9a-z]{32}-seed-web-image$/m);
  });

  it('inspects an older revision and prints JSON on request', async () => {
    const { code, out } = await seed(['inspect', repo.url(), '--rev', first, '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(out) as { flake: { revision: string }; seeds: { name: string }[] };
    expect(report.flake.revision).toBe(first);
    expect(report.seeds.map((s) => s.name)).toEqual(['web']);
  });

  it('explains a bad flake reference and exits non-zero', async () => {
    const { code, err } = await seed(['inspect', 'https://example.org/app.git']);
    expect(code).toBe(1);
    expect(err).toContain(
      'seed: invalid-reference error: flake reference "https://example.org/app.git": unsupported scheme',
    );
  });

  it('explains a validation error with the option it names', async () => {
    const broken = await FlakeRepo.create(
      await demoFlakeFiles({ web: { seed: { size: 'huge' } } }),
    );
    try {
      const { code, err } = await seed(['inspect', broken.url()]);
      expect(code).toBe(1);
      expect(err).toMatch(/^seed: validation error: seed\.size: /);
    } finally {
      await broken.dispose();
    }
  });

  it('rejects bad usage with a message', async () => {
    expect((await seed(['inspect'])).err).toContain("missing required argument 'flake'");
    const { code, err } = await seed(['inspect', repo.url(), '--timeout', 'soon']);
    expect(code).not.toBe(0);
    expect(err).toContain('expected a positive integer');
  });
});
