import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { SeedMeta } from '@seed/contracts';
import { deriveNamespace, generationHash } from '../src';

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
    const canonical =
      '{"connect":{},"expose":{},"name":"web","resources":{"memory":1024,"vcpus":1},' +
      '"rollout":"recreate","shoot":{"enable":false},"size":"s","storage":{},"system":"x86_64-linux"}';
    const expected = createHash('sha256')
      .update(`web=/nix/store/aaa-web ${canonical}\n`)
      .digest('hex');
    expect(generationHash([web])).toBe(expected.slice(0, 12));
  });
});
