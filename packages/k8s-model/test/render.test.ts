import { describe, expect, it } from '@jest/globals';
import { flakeUriDigest, instanceHash } from '@seed/contracts';
import { apps, networkingK8sIo, v1 } from 'kubernetes-models';
import {
  desiredNames,
  flakeStamp,
  renderGeneration,
  type GenerationInput,
  type SeedObject,
} from '../src';
import { everything, generation, instance, webMeta } from './fixtures';
import { modelErrorOf, objectOf } from './helpers';

/** Validates an object against the Kubernetes OpenAPI schema kubernetes-models carries. */
function validateAgainstSchema(object: SeedObject): void {
  switch (object.kind) {
    case 'Namespace':
      return new v1.Namespace(object).validate();
    case 'PersistentVolumeClaim':
      return new v1.PersistentVolumeClaim(object).validate();
    case 'Deployment':
      return new apps.v1.Deployment(object).validate();
    case 'Service':
      return new v1.Service(object).validate();
    case 'NetworkPolicy':
      return new networkingK8sIo.v1.NetworkPolicy(object).validate();
    case 'ResourceQuota':
      return new v1.ResourceQuota(object).validate();
    case 'LimitRange':
      return new v1.LimitRange(object).validate();
  }
}

/** Shuffles deterministically (a fixed rotation and reversal), records included. */
function reordered(input: GenerationInput): GenerationInput {
  const reverse = <V>(record: Record<string, V>) =>
    Object.fromEntries(Object.entries(record).reverse());
  const instances = input.instances.map((seed) => ({
    image: seed.image,
    meta: {
      shoot: seed.meta.shoot,
      rollout: seed.meta.rollout,
      connect: reverse(seed.meta.connect),
      storage: reverse(seed.meta.storage),
      expose: reverse(seed.meta.expose),
      resources: { memory: seed.meta.resources.memory, vcpus: seed.meta.resources.vcpus },
      size: seed.meta.size,
      system: seed.meta.system,
      name: seed.meta.name,
    },
    name: seed.name,
  }));
  return { ...input, instances: [...instances.slice(2), ...instances.slice(0, 2)].reverse() };
}

/** Every object in a JSON tree has its keys in sorted order. */
function keysSortedEverywhere(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(keysSortedEverywhere);
  if (value === null || typeof value !== 'object') return true;
  const keys = Object.keys(value);
  const sorted = [...keys].sort();
  return (
    keys.every((key, index) => key === sorted[index]) &&
    Object.values(value).every(keysSortedEverywhere)
  );
}

describe('renderGeneration', () => {
  const input = generation(everything);
  const objects = renderGeneration(input);

  it('renders Namespace, bounds, NetworkPolicies, claims, Deployments, Services, each by name', () => {
    expect(objects.map((object) => `${object.kind}/${object.metadata.name}`)).toEqual([
      'Namespace/s-abcdefghijkl',
      'ResourceQuota/seed.quota',
      'LimitRange/seed.limits',
      'NetworkPolicy/seed.default-deny',
      'NetworkPolicy/seed.allow-dns',
      'NetworkPolicy/seed.allow-same-flake',
      'NetworkPolicy/seed.allow-to-flakes',
      'NetworkPolicy/seed.allow-internet',
      'NetworkPolicy/postgres',
      'NetworkPolicy/resolver',
      'NetworkPolicy/web',
      'PersistentVolumeClaim/seed-postgres-data',
      'PersistentVolumeClaim/seed-web-data',
      'Deployment/postgres',
      'Deployment/resolver',
      'Deployment/web',
      'Deployment/worker',
      'Service/postgres',
      'Service/resolver',
      'Service/web',
    ]);
  });

  const apiVersions: Partial<Record<SeedObject['kind'], string>> = {
    Deployment: 'apps/v1',
    NetworkPolicy: 'networking.k8s.io/v1',
  };
  /** The flake's own policies and bounds, which belong to no instance. */
  const isFlakeObject = (object: SeedObject) =>
    object.kind !== 'Namespace' && object.metadata.name.startsWith('seed.');

  it.each(objects.map((object) => [`${object.kind}/${object.metadata.name}`, object] as const))(
    '%s is valid for the API server and for server-side apply',
    (_name, object) => {
      expect(() => validateAgainstSchema(object)).not.toThrow();
      expect(object.apiVersion).toBe(apiVersions[object.kind] ?? 'v1');
      expect(object.metadata.namespace).toBe(
        object.kind === 'Namespace' ? undefined : 's-abcdefghijkl',
      );
      expect(object.metadata.labels).toMatchObject({ 'seed.loom.farm/managed-by': 'seed' });
    },
  );

  it('stamps the Namespace with the flake it holds, and nothing a push changes', () => {
    const namespace = objectOf(objects, 'Namespace', 's-abcdefghijkl');
    expect(namespace.metadata.labels).toEqual({ 'seed.loom.farm/managed-by': 'seed' });
    expect(namespace.metadata.annotations).toEqual({
      'seed.loom.farm/flake-uri': 'github:example/flake',
      'seed.loom.farm/flake-sha256': flakeUriDigest('github:example/flake'),
    });
  });

  it('stamps the state with the flake’s generation and source', () => {
    expect(
      flakeStamp({
        flakeUri: 'github:example/flake',
        namespace: 's-abcdefghijkl',
        commit: '0123456789abcdef0123456789abcdef01234567',
        generation: '0123456789ab',
      }).annotations,
    ).toEqual({
      'seed.loom.farm/flake-uri': 'github:example/flake',
      'seed.loom.farm/flake-sha256': flakeUriDigest('github:example/flake'),
      'seed.loom.farm/commit': '0123456789abcdef0123456789abcdef01234567',
      'seed.loom.farm/generation': '0123456789ab',
    });
  });

  it('stamps every other object with its instance and that instance’s hash alone', () => {
    const hashes = new Map(everything.map((seed) => [seed.name, instanceHash(seed)]));
    for (const object of objects.filter((o) => o.kind !== 'Namespace' && !isFlakeObject(o))) {
      const instance = object.metadata.labels?.['seed.loom.farm/instance'] ?? '';
      expect(object.metadata.labels).toEqual({
        'seed.loom.farm/managed-by': 'seed',
        'seed.loom.farm/instance': instance,
      });
      expect(object.metadata.annotations).toEqual({
        'seed.loom.farm/instance-hash': hashes.get(instance),
      });
    }
  });

  it('changes only the changed instance’s objects in a new generation', () => {
    const [first, ...others] = everything;
    const changed = { ...first!, image: '/nix/store/ffff-nixos-image-changed.tar' };
    const next = renderGeneration(
      generation([changed, ...others], { generation: 'ffffffffffff', commit: 'c'.repeat(40) }),
    );
    const before = new Map(objects.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
    const differing = next
      .filter(
        (o) => JSON.stringify(o) !== JSON.stringify(before.get(`${o.kind}/${o.metadata.name}`)),
      )
      .map((o) => `${o.kind}/${o.metadata.name}`);
    expect(differing).toEqual(
      objects
        .filter((o) => o.metadata.labels?.['seed.loom.farm/instance'] === first!.name)
        .map((o) => `${o.kind}/${o.metadata.name}`),
    );
  });

  it('labels every other object with the instance it belongs to', () => {
    const instanceOf = (object: SeedObject) => object.metadata.labels?.['seed.loom.farm/instance'];
    const instanceObjects = objects.filter((o) => o.kind !== 'Namespace' && !isFlakeObject(o));
    expect(instanceObjects.map(instanceOf)).toEqual([
      'postgres',
      'resolver',
      'web',
      'postgres',
      'web',
      'postgres',
      'resolver',
      'web',
      'worker',
      'postgres',
      'resolver',
      'web',
    ]);
  });

  it('gives byte-identical JSON for a reordered input, with sorted keys', () => {
    const again = renderGeneration(reordered(input));
    expect(JSON.stringify(again)).toBe(JSON.stringify(objects));
    expect(keysSortedEverywhere(objects)).toBe(true);
  });

  it('does not keep references into its input', () => {
    const copy = structuredClone(input);
    const rendered = renderGeneration(copy);
    (copy.instances[0]?.meta.storage.data ?? { size: '' }).size = '99Gi';
    expect(JSON.stringify(rendered)).toBe(JSON.stringify(objects));
  });

  it('renders only the Namespace, its bounds and its policies for a flake without seeds', () => {
    expect(renderGeneration(generation([])).map((object) => object.kind)).toEqual([
      'Namespace',
      'ResourceQuota',
      'LimitRange',
      'NetworkPolicy',
      'NetworkPolicy',
      'NetworkPolicy',
      'NetworkPolicy',
      'NetworkPolicy',
    ]);
  });
});

describe('desiredNames', () => {
  const FLAKE_POLICIES = [
    'seed.allow-dns',
    'seed.allow-internet',
    'seed.allow-same-flake',
    'seed.allow-to-flakes',
    'seed.default-deny',
  ];

  it('lists the names of every kind, sorted', () => {
    expect(desiredNames(renderGeneration(generation(everything)))).toEqual({
      Namespace: ['s-abcdefghijkl'],
      ResourceQuota: ['seed.quota'],
      LimitRange: ['seed.limits'],
      NetworkPolicy: ['postgres', 'resolver', ...FLAKE_POLICIES, 'web'],
      ConfigMap: [],
      PersistentVolumeClaim: ['seed-postgres-data', 'seed-web-data'],
      Deployment: ['postgres', 'resolver', 'web', 'worker'],
      Service: ['postgres', 'resolver', 'web'],
    });
  });

  it('lists every kind, even without objects of it', () => {
    expect(desiredNames(renderGeneration(generation([instance('worker')])))).toEqual({
      Namespace: ['s-abcdefghijkl'],
      ResourceQuota: ['seed.quota'],
      LimitRange: ['seed.limits'],
      NetworkPolicy: FLAKE_POLICIES,
      ConfigMap: [],
      PersistentVolumeClaim: [],
      Deployment: ['worker'],
      Service: [],
    });
  });
});

describe('renderGeneration refuses, before rendering anything,', () => {
  const long = 'a'.repeat(64);
  it.each<[string, GenerationInput, { instance?: string; field: string; reason: unknown }]>([
    [
      'an instance name of 64 characters',
      generation([instance(long)]),
      {
        instance: long,
        field: 'name',
        reason: `instance name "${long}" is 64 characters; a DNS-1035 label has at most 63`,
      },
    ],
    [
      'an upper-case instance name',
      generation([instance('Web')]),
      { instance: 'Web', field: 'name', reason: expect.stringContaining('not a DNS-1035 label') },
    ],
    [
      'an instance whose meta names another',
      generation([{ ...instance('web'), meta: { ...webMeta, name: 'api' } }]),
      { instance: 'web', field: 'meta.name', reason: '"api" differs from the instance name "web"' },
    ],
    [
      'an instance twice',
      generation([instance('web'), instance('web')]),
      { instance: 'web', field: 'name', reason: 'appears more than once' },
    ],
    [
      'two instances that would share a claim',
      generation([
        instance('a', { storage: { 'b-c': { size: '1Gi', mountPoint: '/x' } } }),
        instance('a-b', { storage: { c: { size: '1Gi', mountPoint: '/x' } } }),
      ]),
      {
        instance: 'a-b',
        field: 'meta.storage.c',
        reason:
          'PersistentVolumeClaim "seed-a-b-c" is already the claim of seeds.a.meta.storage.b-c',
      },
    ],
    [
      'a claim name over 253 characters',
      generation([
        instance('web', { storage: { ['d'.repeat(250)]: { size: '1Gi', mountPoint: '/d' } } }),
      ]),
      {
        instance: 'web',
        field: `meta.storage.${'d'.repeat(250)}`,
        reason: expect.stringContaining('is 259 characters; a DNS-1123 subdomain has at most 253'),
      },
    ],
    [
      'a storage key longer than a volume name',
      generation([instance('web', { storage: { [long]: { size: '1Gi', mountPoint: '/d' } } })]),
      {
        instance: 'web',
        field: `meta.storage.${long}`,
        reason: `volume name "${long}" is 64 characters; a DNS-1123 label has at most 63`,
      },
    ],
    [
      'two claims on one mount point',
      generation([
        instance('web', {
          storage: {
            a: { size: '1Gi', mountPoint: '/data' },
            b: { size: '1Gi', mountPoint: '/data' },
          },
        }),
      ]),
      {
        instance: 'web',
        field: 'meta.storage.b.mountPoint',
        reason: '"/data" is already the mount point of meta.storage.a',
      },
    ],
    [
      'an expose key that makes a port name over 15',
      generation([instance('web', { expose: { nameserver12: { port: 53, protocol: 'dns' } } })]),
      {
        instance: 'web',
        field: 'meta.expose.nameserver12',
        reason:
          'port name "nameserver12-tcp" is 16 characters; an IANA service name has at most 15',
      },
    ],
    [
      'two expose entries with one port name',
      generation([
        instance('web', {
          expose: { a: { port: 53, protocol: 'dns' }, 'a-tcp': { port: 54, protocol: 'tcp' } },
        }),
      ]),
      {
        instance: 'web',
        field: 'meta.expose.a-tcp',
        reason: 'port name "a-tcp" is already the name of meta.expose.a',
      },
    ],
    [
      'an upper-case connect key',
      generation([instance('web', { connect: { DB: { service: 'postgres', port: null } } })]),
      {
        instance: 'web',
        field: 'meta.connect.DB',
        reason: expect.stringContaining('connect key "DB"'),
      },
    ],
    [
      'an image that is no store path',
      generation([{ ...instance('web'), image: 'nginx:latest' }]),
      { instance: 'web', field: 'image', reason: '"nginx:latest" is not an absolute store path' },
    ],
    [
      'a namespace that is no DNS label',
      generation([instance('web')], { namespace: 'S-Upper' }),
      { field: 'namespace', reason: expect.stringContaining('not a DNS-1123 label') },
    ],
    [
      'an empty generation',
      generation([instance('web')], { generation: '' }),
      { field: 'generation', reason: 'the generation is empty' },
    ],
    [
      'a generation that is not 12 hex digits',
      generation([instance('web')], { generation: 'not/a/hash' }),
      { field: 'generation', reason: expect.stringContaining('is not 12 hex digits') },
    ],
  ])('%s', (_what, input, expected) => {
    expect(modelErrorOf(() => renderGeneration(input))).toEqual({
      instance: undefined,
      ...expected,
    });
  });

  it.each([0, 70000, 80.5])('a shoot-pool port of %p', (shootPoolPort) => {
    const input = generation([instance('web', { shoot: { enable: true } })]);
    expect(modelErrorOf(() => renderGeneration(input, { shootPoolPort }))).toEqual({
      instance: undefined,
      field: 'options.shootPoolPort',
      reason: `${shootPoolPort} is not a port number (1-65535)`,
    });
  });
});
