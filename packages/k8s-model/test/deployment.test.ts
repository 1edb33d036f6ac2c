import { describe, expect, it } from '@jest/globals';
import { SIZE_TIERS, type SeedMeta, type SizeTier } from '@seed/contracts';
import { renderDeployment, renderGeneration, type RenderOptions } from '../src';
import { generation, instance } from './fixtures';
import { containerOf, objectOf } from './helpers';

const context = generation([]);

function deploymentOf(meta: Partial<SeedMeta> = {}, options?: RenderOptions) {
  return renderDeployment(context, instance('web', meta), options);
}

const baseEnv = [
  { name: 'SEED_NAMESPACE', value: 's-abcdefghijkl' },
  { name: 'SEED_INSTANCE', value: 'web' },
  {
    name: 'SEED_NODE_IP',
    valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.hostIP' } },
  },
];

describe('renderDeployment', () => {
  it('runs one Kata pod of the instance image', () => {
    const deployment = deploymentOf();
    expect(deployment.metadata).toEqual({
      name: 'web',
      namespace: 's-abcdefghijkl',
      labels: {
        'seed.loom.farm/managed-by': 'seed',
        'seed.loom.farm/instance': 'web',
      },
      annotations: {
        'seed.loom.farm/instance-hash': expect.stringMatching(/^[0-9a-f]{12}$/),
      },
    });
    expect(deployment.spec?.replicas).toBe(1);
    expect(deployment.spec?.template.spec?.runtimeClassName).toBe('kata');
    expect(deployment.spec?.template.spec?.containers).toHaveLength(1);
    expect(containerOf(deployment)).toMatchObject({
      name: 'web',
      image: `nix:0/nix/store/${'a'.repeat(32)}-nixos-image-web.tar`,
    });
  });

  it('selects and labels pods by managed-by and instance only', () => {
    const deployment = deploymentOf();
    const selector = { 'seed.loom.farm/managed-by': 'seed', 'seed.loom.farm/instance': 'web' };
    expect(deployment.spec?.selector.matchLabels).toEqual(selector);
    expect(deployment.spec?.template.metadata?.labels).toEqual(selector);
  });

  it.each(Object.entries(SIZE_TIERS) as [SizeTier, { vcpus: number; memory: number }][])(
    'sizes the VM of tier %s through Kata annotations, as strings',
    (size, resources) => {
      expect(deploymentOf({ size, resources }).spec?.template.metadata?.annotations).toEqual({
        'io.katacontainers.config.hypervisor.default_vcpus': String(resources.vcpus),
        'io.katacontainers.config.hypervisor.default_memory': String(resources.memory),
      });
    },
  );

  it.each<[string, Partial<SeedMeta>, RenderOptions | undefined, object[]]>([
    ['nothing but the basics', {}, undefined, baseEnv],
    [
      'a connect entry with a port (host and, as an addition, port)',
      { connect: { db: { service: 'postgres', port: 5432 } } },
      undefined,
      [
        ...baseEnv,
        { name: 'SEED_DB_HOST', value: 'postgres' },
        { name: 'SEED_DB_PORT', value: '5432' },
      ],
    ],
    [
      'connect entries without a port, by key, dashes as underscores',
      {
        connect: {
          'object-store': { service: 'minio.storage', port: null },
          cache: { service: 'redis', port: null },
        },
      },
      undefined,
      [
        ...baseEnv,
        { name: 'SEED_CACHE_HOST', value: 'redis' },
        { name: 'SEED_OBJECT_STORE_HOST', value: 'minio.storage' },
      ],
    ],
    [
      'shoots, at the default shoot-pool port',
      { shoot: { enable: true } },
      undefined,
      [
        ...baseEnv,
        { name: 'SEED_SHOOT_URL', value: 'http://$(SEED_NODE_IP):7070' },
        { name: 'SEED_SHOOT_TOKEN_FILE', value: '/seed/shoot-token/token' },
      ],
    ],
    [
      'shoots, at a configured shoot-pool port, after connect variables',
      { shoot: { enable: true }, connect: { db: { service: 'postgres', port: null } } },
      { shootPoolPort: 9000 },
      [
        ...baseEnv,
        { name: 'SEED_DB_HOST', value: 'postgres' },
        { name: 'SEED_SHOOT_URL', value: 'http://$(SEED_NODE_IP):9000' },
        { name: 'SEED_SHOOT_TOKEN_FILE', value: '/seed/shoot-token/token' },
      ],
    ],
    [
      'no shoot URL when shoots are off',
      { shoot: { enable: false } },
      { shootPoolPort: 9000 },
      baseEnv,
    ],
  ])('sets the environment for %s', (_what, meta, options, env) => {
    expect(containerOf(deploymentOf(meta, options)).env).toEqual(env);
  });

  it.each<[string, SeedMeta['expose'], object[] | undefined]>([
    ['nothing exposed', {}, undefined],
    [
      'an http port',
      { http: { port: 8080, protocol: 'http' } },
      [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    ],
    [
      'dns on TCP and UDP, and udp, by key',
      { resolver: { port: 53, protocol: 'dns' }, game: { port: 27015, protocol: 'udp' } },
      [
        { name: 'game', containerPort: 27015, protocol: 'UDP' },
        { name: 'resolver-tcp', containerPort: 53, protocol: 'TCP' },
        { name: 'resolver-udp', containerPort: 53, protocol: 'UDP' },
      ],
    ],
    [
      'grpc and tcp',
      { rpc: { port: 9090, protocol: 'grpc' }, ssh: { port: 22, protocol: 'tcp' } },
      [
        { name: 'rpc', containerPort: 9090, protocol: 'TCP' },
        { name: 'ssh', containerPort: 22, protocol: 'TCP' },
      ],
    ],
  ])('declares container ports for %s', (_what, expose, ports) => {
    expect(containerOf(deploymentOf({ expose })).ports).toEqual(ports);
  });

  const recreate = { type: 'Recreate' };
  const rolling = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
  const http = { http: { port: 8080, protocol: 'http' } } as const;

  it.each<[string, SeedMeta['rollout'], SeedMeta['expose'], object, number | undefined]>([
    ['recreate: no probe', 'recreate', http, recreate, undefined],
    ['rolling: probe the only port', 'rolling', http, rolling, 8080],
    [
      'rolling: probe the first port by key',
      'rolling',
      { web: { port: 80, protocol: 'http' }, api: { port: 9090, protocol: 'grpc' } },
      rolling,
      9090,
    ],
    [
      'rolling: skip a UDP port',
      'rolling',
      { a: { port: 5000, protocol: 'udp' }, b: { port: 6000, protocol: 'tcp' } },
      rolling,
      6000,
    ],
    [
      'rolling: dns is served on TCP too',
      'rolling',
      { a: { port: 53, protocol: 'dns' }, b: { port: 80, protocol: 'http' } },
      rolling,
      53,
    ],
    [
      'rolling: only UDP, no probe',
      'rolling',
      { game: { port: 27015, protocol: 'udp' } },
      rolling,
      undefined,
    ],
    ['rolling: nothing exposed, no probe', 'rolling', {}, rolling, undefined],
  ])('rolls out %s', (_what, rollout, expose, strategy, probePort) => {
    const deployment = deploymentOf({ rollout, expose });
    expect(deployment.spec?.strategy).toEqual(strategy);
    expect(containerOf(deployment).readinessProbe).toEqual(
      probePort === undefined ? undefined : { tcpSocket: { port: probePort } },
    );
  });

  it('mounts one claim per storage entry at its mount point', () => {
    const deployment = deploymentOf({
      storage: {
        data: { size: '1Gi', mountPoint: '/seed/storage/data' },
        cache: { size: '500Mi', mountPoint: '/var/cache/app' },
      },
    });
    expect(deployment.spec?.template.spec?.volumes).toEqual([
      { name: 'cache', persistentVolumeClaim: { claimName: 'seed-web-cache' } },
      { name: 'data', persistentVolumeClaim: { claimName: 'seed-web-data' } },
    ]);
    expect(containerOf(deployment).volumeMounts).toEqual([
      { name: 'cache', mountPath: '/var/cache/app' },
      { name: 'data', mountPath: '/seed/storage/data' },
    ]);
  });

  it('gives an instance with shoots a projected token for the shoot pool, and no API token', () => {
    const deployment = deploymentOf({ shoot: { enable: true } });
    const pod = deployment.spec?.template.spec;
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.volumes).toEqual([
      {
        name: 'seed-shoot-token',
        projected: {
          sources: [
            {
              serviceAccountToken: {
                audience: 'seed-shoot',
                expirationSeconds: 600,
                path: 'token',
              },
            },
          ],
        },
      },
    ]);
    expect(containerOf(deployment).volumeMounts).toEqual([
      { name: 'seed-shoot-token', mountPath: '/seed/shoot-token', readOnly: true },
    ]);
  });

  it("requests the tier's memory and a quarter core per vCPU, with no limits", () => {
    const container = containerOf(
      deploymentOf({ size: 'm', resources: { vcpus: 2, memory: 2048 } }),
    );
    expect(container.resources).toEqual({ requests: { cpu: '500m', memory: '2Gi' } });
    const large = containerOf(deploymentOf({ size: 'l', resources: { vcpus: 4, memory: 4096 } }));
    expect(large.resources).toEqual({ requests: { cpu: '1', memory: '4Gi' } });
    const small = containerOf(deploymentOf({ size: 'xs', resources: { vcpus: 1, memory: 512 } }));
    expect(small.resources).toEqual({ requests: { cpu: '250m', memory: '512Mi' } });
  });

  it('refuses storage where the shoot token goes', () => {
    expect(() =>
      deploymentOf({
        shoot: { enable: true },
        storage: { data: { size: '1Gi', mountPoint: '/seed/shoot-token' } },
      }),
    ).toThrow(/the shoot token's/);
  });

  it('has no volumes without storage', () => {
    const deployment = deploymentOf();
    expect(deployment.spec?.template.spec?.volumes).toBeUndefined();
    expect(containerOf(deployment).volumeMounts).toBeUndefined();
  });
});

describe('the pod template', () => {
  const web = instance('web', {
    expose: { http: { port: 8080, protocol: 'http' } },
    storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
    connect: { db: { service: 'postgres', port: 5432 } },
    rollout: 'rolling',
    shoot: { enable: true },
  });
  const templateOf = (input: ReturnType<typeof generation>) =>
    objectOf(renderGeneration(input), 'Deployment', 'web').spec?.template;

  it('does not change with the generation, the commit or the other instances', () => {
    const before = generation([web], { generation: 'aaaaaaaaaaaa', commit: 'c1' });
    const after = generation([web, instance('api')], { generation: 'bbbbbbbbbbbb', commit: 'c2' });
    expect(templateOf(before)).toBeDefined();
    expect(JSON.stringify(templateOf(after))).toBe(JSON.stringify(templateOf(before)));
  });

  it('carries neither the generation, the source nor the instance hash', () => {
    const input = generation([web], { generation: 'feedfacecafe', commit: 'deadbeef0001' });
    const template = JSON.stringify(templateOf(input));
    expect(template).not.toContain('feedfacecafe');
    expect(template).not.toContain('deadbeef0001');
    expect(template).not.toContain('seed.loom.farm/generation');
    expect(template).not.toContain('seed.loom.farm/flake-uri');
    expect(template).not.toContain('seed.loom.farm/commit');
    expect(template).not.toContain('seed.loom.farm/instance-hash');
  });

  it('changes when the image or the meta does', () => {
    const base = JSON.stringify(templateOf(generation([web])));
    const newImage = { ...web, image: '/nix/store/bbbb-nixos-image-web.tar' };
    const bigger = { ...web, meta: { ...web.meta, size: 'm' as const, resources: SIZE_TIERS.m } };
    expect(JSON.stringify(templateOf(generation([newImage])))).not.toBe(base);
    expect(JSON.stringify(templateOf(generation([bigger])))).not.toBe(base);
  });
});
