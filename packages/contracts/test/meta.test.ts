import { describe, expect, it } from '@jest/globals';
import { canonicalJson, META_LIMITS, parseSeedMeta, quantityBytes, type SeedMeta } from '../src';

const web: SeedMeta = {
  name: 'web',
  system: 'x86_64-linux',
  size: 's',
  resources: { vcpus: 1, memory: 1024 },
  expose: { http: { port: 8080, protocol: 'http' }, dns: { port: 53, protocol: 'dns' } },
  storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
  connect: { db: { service: 'postgres', port: 5432 }, cache: { service: 'redis', port: null } },
  rollout: 'recreate',
  shoot: { enable: false },
};

function problemsOf(value: unknown, name?: string): string[] {
  const result = parseSeedMeta(value, name);
  return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
}

describe('parseSeedMeta', () => {
  it('accepts the meta of ARCHITECTURE.md', () => {
    expect(parseSeedMeta(web, 'web')).toEqual({ ok: true, meta: web });
  });

  it.each([
    ['an unknown tier', { ...web, size: 'xxl' }, 'size: '],
    [
      'resources that do not match the tier',
      { ...web, resources: { vcpus: 2, memory: 1024 } },
      'resources: size "s" means 1 vCPU and 1024 MiB',
    ],
    [
      'a port above 65535',
      { ...web, expose: { http: { port: 70000, protocol: 'http' } } },
      'expose.http.port: port must be 1-65535',
    ],
    [
      'a port given as a string',
      { ...web, expose: { http: { port: '80', protocol: 'http' } } },
      'expose.http.port: ',
    ],
    [
      'an unknown protocol',
      { ...web, expose: { http: { port: 80, protocol: 'quic' } } },
      'expose.http.protocol: ',
    ],
    [
      'an expose key too long for a port name',
      { ...web, expose: { 'twelve-chars': { port: 80, protocol: 'tcp' } } },
      'expose.twelve-chars: expose keys are at most 11 characters',
    ],
    [
      'an expose key with a double dash',
      { ...web, expose: { 'a--b': { port: 80, protocol: 'tcp' } } },
      'expose.a--b: expose keys may not contain "--"',
    ],
    [
      'two entries on one port and transport',
      { ...web, expose: { a: { port: 53, protocol: 'udp' }, b: { port: 53, protocol: 'dns' } } },
      'expose.b.port: 53/UDP is already exposed by "a"',
    ],
    [
      'a size that is no quantity',
      { ...web, storage: { data: { size: '1 GB', mountPoint: '/d' } } },
      'storage.data.size: expected a Kubernetes quantity',
    ],
    [
      'a relative mount point',
      { ...web, storage: { data: { size: '1Gi', mountPoint: 'data' } } },
      'storage.data.mountPoint: mountPoint must be an absolute path',
    ],
    [
      'a service that is no DNS name',
      { ...web, connect: { db: { service: 'Post Gres', port: null } } },
      'connect.db.service: service must be a DNS name',
    ],
    ['an unknown rollout', { ...web, rollout: 'blue-green' }, 'rollout: '],
    ['an unknown field', { ...web, replicas: 3 }, 'replicas'],
    [
      'a name that is no DNS label',
      { ...web, name: 'Web_1' },
      'name: instance names are DNS-1035 labels',
    ],
    ['a name starting with a digit', { ...web, name: '1web' }, 'name: instance names are DNS-1035'],
    ['a missing shoot section', { ...web, shoot: undefined }, 'shoot: '],
  ])('rejects %s, naming the field', (_what, value, expected) => {
    expect(problemsOf(value).join('\n')).toContain(expected);
  });

  it('rejects a meta whose name differs from its seeds attribute', () => {
    expect(problemsOf(web, 'api')).toEqual(['name: "web" differs from its attribute "api"']);
  });

  const entries = <T>(count: number, entry: (i: number) => T): Record<string, T> =>
    Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, entry(i)]));

  it.each([
    [
      'expose',
      {
        expose: entries(META_LIMITS.exposeEntries + 1, (i) => ({
          port: 1000 + i,
          protocol: 'tcp',
        })),
      },
      'expose: at most 16 expose entries per instance',
    ],
    [
      'storage',
      { storage: entries(9, (i) => ({ size: '1Gi', mountPoint: `/data/${i}` })) },
      'storage: at most 8 storage entries per instance',
    ],
    [
      'connect',
      { connect: entries(33, () => ({ service: 'db', port: null })) },
      'connect: at most 32 connect entries per instance',
    ],
    [
      'a volume size',
      { storage: { data: { size: '17Ti', mountPoint: '/data' } } },
      'storage.data.size: a volume is at most 16Ti',
    ],
  ])("caps %s at Seed's limit, naming it", (_what, change, expected) => {
    const problems = problemsOf({ ...web, ...change });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(expected);
  });

  it('accepts up to the limits', () => {
    expect(
      problemsOf({
        ...web,
        expose: entries(16, (i) => ({ port: 1000 + i, protocol: 'tcp' })),
        storage: { data: { size: '16Ti', mountPoint: '/data' } },
      }),
    ).toEqual([]);
    expect(quantityBytes('1.5Gi')).toBe(1.5 * 2 ** 30);
    expect(quantityBytes('500M')).toBe(5e8);
    expect(quantityBytes('1 GB')).toBeUndefined();
  });

  it('allows one port on TCP and UDP under different keys', () => {
    const meta = {
      ...web,
      expose: { a: { port: 53, protocol: 'tcp' }, b: { port: 53, protocol: 'udp' } },
    };
    expect(problemsOf(meta)).toEqual([]);
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and keeps arrays in order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,1]},"b":1}',
    );
  });
});
