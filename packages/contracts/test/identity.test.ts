import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { deriveNamespace, generationHash, instanceHash, type SeedMeta } from '../src';

const meta = (name: string, size: SeedMeta['size'] = 's'): SeedMeta => ({
  name,
  system: 'x86_64-linux',
  size,
  resources: size === 's' ? { vcpus: 1, memory: 1024 } : { vcpus: 2, memory: 2048 },
  expose: {},
  storage: {},
  connect: {},
  rollout: 'recreate',
  shoot: { enable: false },
});

describe('deriveNamespace', () => {
  it('matches the original Seed', () => {
    expect(deriveNamespace('github:loomtex/seed')).toBe('s-gaydazldmnsg');
  });

  it('is a DNS label of 14 characters that differs per flake', () => {
    const names = ['github:a/b', 'github:a/c', 'git+https://example.org/x.git'].map(
      deriveNamespace,
    );
    for (const name of names) expect(name).toMatch(/^s-[a-z2-7]{12}$/);
    expect(new Set(names).size).toBe(3);
  });
});

describe('generationHash', () => {
  const web = { name: 'web', image: '/nix/store/aaa-web', meta: meta('web') };
  const api = { name: 'api', image: '/nix/store/bbb-api', meta: meta('api') };

  it('is 12 hex digits and independent of the order of seeds', () => {
    expect(generationHash([web, api])).toMatch(/^[0-9a-f]{12}$/);
    expect(generationHash([web, api])).toBe(generationHash([api, web]));
  });

  it('changes with an image path and with a meta-only change', () => {
    const base = generationHash([web, api]);
    expect(generationHash([{ ...web, image: '/nix/store/ccc-web' }, api])).not.toBe(base);
    expect(generationHash([{ ...web, meta: meta('web', 'm') }, api])).not.toBe(base);
  });

  it('does not depend on the key order of a meta', () => {
    const { shoot, rollout, ...rest } = web.meta;
    const reordered = { shoot, rollout, ...rest, resources: { memory: 1024, vcpus: 1 } };
    expect(generationHash([{ ...web, meta: reordered }])).toBe(generationHash([web]));
  });

  it('hashes the documented lines', () => {
    const lines = [api, web]
      .map((seed) => `${seed.name}=${seed.image} ${canonicalOf(seed.name)}\n`)
      .join('');
    const expected = createHash('sha256').update(lines).digest('hex').slice(0, 12);
    expect(generationHash([web, api])).toBe(expected);
    expect(generationHash([web])).toBe('66db25ce5be0');
  });
});

describe('instanceHash', () => {
  const web = { name: 'web', image: '/nix/store/aaa-web', meta: meta('web') };

  it("hashes the instance's own line", () => {
    const line = `web=/nix/store/aaa-web ${canonicalOf('web')}\n`;
    expect(instanceHash(web)).toBe(createHash('sha256').update(line).digest('hex').slice(0, 12));
    expect(instanceHash(web)).toBe('66db25ce5be0');
  });

  it('is the generation of a flake of that instance alone', () => {
    expect(instanceHash(web)).toBe(generationHash([web]));
  });

  it('changes with the image and the meta, not with the key order', () => {
    const base = instanceHash(web);
    expect(instanceHash({ ...web, image: '/nix/store/ccc-web' })).not.toBe(base);
    expect(instanceHash({ ...web, meta: meta('web', 'm') })).not.toBe(base);
    const { shoot, ...rest } = web.meta;
    expect(instanceHash({ ...web, meta: { shoot, ...rest } })).toBe(base);
  });
});

/** The canonical JSON of `meta(name)`, written out: keys sorted, no whitespace. */
function canonicalOf(name: string): string {
  return (
    `{"connect":{},"expose":{},"name":"${name}","resources":{"memory":1024,"vcpus":1},` +
    '"rollout":"recreate","shoot":{"enable":false},"size":"s","storage":{},"system":"x86_64-linux"}'
  );
}
