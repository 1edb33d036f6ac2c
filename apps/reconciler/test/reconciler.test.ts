import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { loadKubeConfig } from '@seed/kube-config';
import { deriveNamespace, flakeUriDigest, instanceHash } from '@seed/contracts';
import {
  apiWrites,
  collidingFlakeUris,
  splitEvents,
  writesBetween,
  type KubeApiServer,
} from '@seed/testing';
import {
  Builder,
  Cluster,
  generation,
  meta,
  startReconcilerWorld,
  type ReconcilerWorld,
} from './cluster';

const FLAKE = 'github:acme/shop';
const NS = deriveNamespace(FLAKE);

let api: KubeApiServer;
let world: ReconcilerWorld | undefined;
let builder: Builder;
let cluster: Cluster;

const web = (size: 's' | 'm' = 's') =>
  meta('web', {
    size,
    expose: { http: { port: 8080, protocol: 'http' } },
    storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
  });
const db = meta('db', {
  expose: { pg: { port: 5432, protocol: 'tcp' } },
  storage: { pgdata: { size: '5Gi', mountPoint: '/var/lib/postgresql' } },
});
const dns = meta('dns', { size: 'xs', expose: { dns: { port: 53, protocol: 'dns' } } });

beforeAll(async () => {
  world = await startReconcilerWorld();
  ({ api, builder, cluster } = world);
}, 20 * 60_000);

afterAll(async () => {
  await world?.stop();
});

describe('applying generations', () => {
  it('creates everything on the first apply', async () => {
    expect(await builder.apply(generation(FLAKE, [web(), db, dns]))).toEqual({
      changed: true,
      generation: expect.any(String),
    });
    expect(await cluster.names(NS)).toEqual([
      'ConfigMap/seed-state',
      'Deployment/db',
      'Deployment/dns',
      'Deployment/web',
      'PVC/seed-db-pgdata',
      'PVC/seed-web-data',
      'Service/db',
      'Service/dns',
      'Service/web',
    ]);
    const request = generation(FLAKE, [web(), db, dns]);
    const namespace = await cluster.core.readNamespace({ name: NS });
    expect(namespace.metadata?.annotations).toMatchObject({ 'seed.loom.farm/flake-uri': FLAKE });
    // What a push changes is on the state only, so a push does not write the Namespace.
    expect(namespace.metadata?.annotations).not.toHaveProperty('seed.loom.farm/generation');
    const state = await cluster.core.readNamespacedConfigMap({ namespace: NS, name: 'seed-state' });
    expect(state.metadata?.annotations).toMatchObject({
      'seed.loom.farm/flake-uri': FLAKE,
      'seed.loom.farm/commit': request.revision,
      'seed.loom.farm/generation': request.generation,
    });
    const deployment = await cluster.deployment(NS, 'web');
    expect(deployment?.metadata?.labels).toEqual({
      'seed.loom.farm/managed-by': 'seed',
      'seed.loom.farm/instance': 'web',
    });
    expect(deployment?.metadata?.annotations).toMatchObject({
      'seed.loom.farm/instance-hash': instanceHash({
        name: 'web',
        meta: web(),
        image: `/nix/store/${'0'.repeat(32)}-seed-web-image`,
      }),
    });
    expect(deployment?.metadata?.annotations).not.toHaveProperty('seed.loom.farm/generation');
    expect(deployment?.spec?.template.metadata?.labels).toEqual(deployment?.metadata?.labels);
    const status = await builder.status(FLAKE);
    expect(status).toMatchObject({
      namespace: NS,
      lastError: '',
      instances: expect.arrayContaining([
        expect.objectContaining({ name: 'web', rollout: 'progressing' }),
      ]),
    });
  });

  it('writes nothing for the same generation again', async () => {
    const before = await cluster.versions(NS);
    expect(await builder.apply(generation(FLAKE, [web(), db, dns]))).toMatchObject({
      changed: false,
    });
    expect(await cluster.versions(NS)).toEqual(before);
  });

  it('records the commit of a push that changed nothing, and writes nothing else', async () => {
    const workloads = async () =>
      Object.fromEntries(
        Object.entries(await cluster.versions(NS)).filter(([name]) => !name.includes('seed-state')),
      );
    const before = await workloads();
    const docsOnly = 'b'.repeat(40);
    expect(await builder.apply(generation(FLAKE, [web(), db, dns], docsOnly))).toMatchObject({
      changed: false,
    });
    // What the builder reads to deploy only commits that descend from this one.
    expect((await builder.status(FLAKE)).revision).toBe(docsOnly);
    expect(await workloads()).toEqual(before);
    // Back to the first commit for the tests below, which send it.
    await builder.apply(generation(FLAKE, [web(), db, dns]));
    expect((await builder.status(FLAKE)).revision).toBe('a'.repeat(40));
  });

  it('updates only the resized instance on a meta-only change', async () => {
    const specGeneration = async (name: string) =>
      (await cluster.deployment(NS, name))?.metadata?.generation;
    const before = {
      web: await specGeneration('web'),
      db: await specGeneration('db'),
      dns: await specGeneration('dns'),
    };
    const templates = {
      db: (await cluster.deployment(NS, 'db'))?.spec?.template,
      dns: (await cluster.deployment(NS, 'dns'))?.spec?.template,
    };
    await builder.apply(generation(FLAKE, [web('m'), db, dns]));
    expect(await specGeneration('web')).toBe(before.web! + 1);
    expect(await specGeneration('db')).toBe(before.db);
    expect(await specGeneration('dns')).toBe(before.dns);
    expect((await cluster.deployment(NS, 'db'))?.spec?.template).toEqual(templates.db);
    expect((await cluster.deployment(NS, 'dns'))?.spec?.template).toEqual(templates.dns);
    const annotations = (await cluster.deployment(NS, 'web'))?.spec?.template.metadata?.annotations;
    expect(annotations?.['io.katacontainers.config.hypervisor.default_memory']).toBe('2048');
  });

  it('prunes an instance that left the flake and keeps its volume', async () => {
    await builder.apply(generation(FLAKE, [web('m'), dns]));
    const names = await cluster.names(NS);
    expect(names).not.toContain('Deployment/db');
    expect(names).not.toContain('Service/db');
    expect(names).toContain('PVC/seed-db-pgdata');
  });

  it('never shrinks a volume', async () => {
    const smaller = meta('web', {
      ...web('m'),
      storage: { data: { size: '512Mi', mountPoint: '/seed/storage/data' } },
    });
    await builder.apply(generation(FLAKE, [smaller, dns]));
    const claim = await cluster.core.readNamespacedPersistentVolumeClaim({
      namespace: NS,
      name: 'seed-web-data',
    });
    expect(claim.spec?.resources?.requests?.storage).toBe('1Gi');
    await builder.apply(generation(FLAKE, [web('m'), dns]));
  });
});

describe('writes follow changes', () => {
  const flake = 'github:acme/fleet';
  const namespace = deriveNamespace(flake);
  const fleet = Array.from({ length: 20 }, (_, index) =>
    meta(`app-${String(index).padStart(2, '0')}`, {
      expose: { http: { port: 8080, protocol: 'http' } },
      storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
    }),
  );
  /** Waits out the reconciles the informers queue after a write, which must write nothing. */
  const settled = () => new Promise((resolve) => setTimeout(resolve, 1_500));

  it('writes one changed instance’s objects and the flake’s state, nothing else', async () => {
    await builder.apply(generation(flake, fleet));
    await settled();
    const versions = await cluster.versions(namespace);
    const namespaceVersion = (await cluster.core.readNamespace({ name: namespace })).metadata
      ?.resourceVersion;
    const writes = await apiWrites(api);

    const pushed = generation(flake, fleet, 'b'.repeat(40), {
      'app-07': `/nix/store/${'1'.repeat(32)}-seed-app-07-image`,
    });
    expect(await builder.apply(pushed)).toMatchObject({ changed: true });
    await settled();

    const after = await cluster.versions(namespace);
    const rewritten = Object.keys(after).filter((key) => after[key] !== versions[key]);
    expect(rewritten).toEqual([
      'ConfigMap/seed-state',
      'Deployment/app-07',
      'PVC/seed-app-07-data',
      'Service/app-07',
    ]);
    expect((await cluster.core.readNamespace({ name: namespace })).metadata?.resourceVersion).toBe(
      namespaceVersion,
    );
    // Counted by the API server: one write per rewritten object and one of the state
    // (the generation and its outcome together).
    const { objects, events } = splitEvents(writesBetween(writes, await apiWrites(api)));
    expect(Object.fromEntries(objects)).toEqual({
      'APPLY configmaps': 1,
      'APPLY persistentvolumeclaims': 1,
      'APPLY deployments': 1,
      'APPLY services': 1,
      'APPLY networkpolicies': 1,
    });
    // An Event per write (4 Updated, GenerationApplied), none about the other instances.
    expect(events).toBeLessThanOrEqual(5);
    const told = (await cluster.events(namespace))
      .filter((event) => event.message?.includes(pushed.generation ?? '-'))
      .map((event) => event.involvedObject.name)
      .sort();
    // Deployment, Service and NetworkPolicy app-07, its claim, the state.
    expect(told).toEqual(['app-07', 'app-07', 'app-07', 'seed-app-07-data', 'seed-state']);
  });
});

describe('drift', () => {
  it('restores a Deployment deleted by hand', async () => {
    await cluster.apps.deleteNamespacedDeployment({ namespace: NS, name: 'dns' });
    await cluster.until(
      async () => (await cluster.deployment(NS, 'dns')) !== undefined,
      'the Deployment to come back',
    );
  });

  it('restores a Service edited by hand', async () => {
    const service = await cluster.core.readNamespacedService({ namespace: NS, name: 'web' });
    service.spec!.ports![0]!.port = 9999;
    service.spec!.ports![0]!.targetPort = 9999;
    await cluster.core.replaceNamespacedService({ namespace: NS, name: 'web', body: service });
    await cluster.until(
      async () =>
        (await cluster.core.readNamespacedService({ namespace: NS, name: 'web' })).spec?.ports?.[0]
          ?.port === 8080,
      'the Service port to be put back',
    );
  });
});

describe('drift of the state and the namespace', () => {
  const flake = 'github:acme/drift';
  const namespace = deriveNamespace(flake);
  const request = generation(flake, [web()]);
  const everything = ['ConfigMap/seed-state', 'Deployment/web', 'PVC/seed-web-data', 'Service/web'];
  const state = () =>
    cluster.core.readNamespacedConfigMap({ namespace, name: 'seed-state' }).then(
      (configMap) => configMap.data,
      () => undefined,
    );

  beforeAll(async () => {
    await builder.apply(request);
  });

  it('restores a seed-state deleted by hand', async () => {
    const before = await state();
    await cluster.core.deleteNamespacedConfigMap({ namespace, name: 'seed-state' });
    await cluster.until(async () => (await state())?.desired === before?.desired, 'seed-state');
    expect(JSON.parse((await state())!.applied!)).toMatchObject({
      generation: request.generation,
    });
  });

  it('restores a seed-state edited by hand', async () => {
    await cluster.core.patchNamespacedConfigMap({
      namespace,
      name: 'seed-state',
      body: [{ op: 'replace', path: '/data/applied', value: 'edited' }],
    });
    await cluster.until(
      async () => (await state())?.applied?.includes(request.generation!) ?? false,
      'the applied generation to be recorded again',
    );
  });

  it('restores a Namespace edited by hand', async () => {
    await cluster.core.patchNamespace({
      name: namespace,
      body: [{ op: 'remove', path: '/metadata/annotations/seed.loom.farm~1flake-sha256' }],
    });
    await cluster.until(
      async () =>
        (await cluster.core.readNamespace({ name: namespace })).metadata?.annotations?.[
          'seed.loom.farm/flake-sha256'
        ] === flakeUriDigest(flake),
      'the Namespace annotation to be put back',
    );
  });

  it('drops the generation and commit an older Seed stamped on the Namespace', async () => {
    const objects = KubernetesObjectApi.makeApiClient(loadKubeConfig(api.kubeconfigPath));
    const stamp = { 'seed.loom.farm/generation': '0123456789ab', 'seed.loom.farm/commit': 'c' };
    const namespaceAsOlderSeed = {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: namespace,
        labels: { 'seed.loom.farm/managed-by': 'seed' },
        annotations: {
          'seed.loom.farm/flake-uri': flake,
          'seed.loom.farm/flake-sha256': flakeUriDigest(flake),
          ...stamp,
        },
      },
    };
    await objects.patch(
      namespaceAsOlderSeed,
      undefined,
      undefined,
      'seed',
      true,
      PatchStrategy.ServerSideApply,
    );
    await cluster.until(async () => {
      const annotations = (await cluster.core.readNamespace({ name: namespace })).metadata
        ?.annotations;
      return !Object.keys(stamp).some((key) => key in (annotations ?? {}));
    }, 'the retired annotations to be dropped');
  });

  it('restores a claim deleted by hand', async () => {
    await cluster.core.deleteNamespacedPersistentVolumeClaim({ namespace, name: 'seed-web-data' });
    // The protection controller (not running here) would drop its finalizer: no pod uses it.
    await cluster.core.patchNamespacedPersistentVolumeClaim({
      namespace,
      name: 'seed-web-data',
      body: [{ op: 'remove', path: '/metadata/finalizers' }],
    });
    await cluster.until(
      async () => (await cluster.names(namespace)).includes('PVC/seed-web-data'),
      'the claim to come back',
    );
  });

  it('restores a Namespace deleted by hand, with everything in it', async () => {
    await cluster.core.deleteNamespace({ name: namespace });
    await cluster.deleteContents(namespace);
    await cluster.until(
      async () =>
        (await cluster.core.readNamespace({ name: namespace }).catch(() => undefined))?.metadata
          ?.deletionTimestamp === undefined &&
        (await cluster.names(namespace)).length === everything.length,
      'the namespace and its objects to come back',
    );
    expect(await cluster.names(namespace)).toEqual(everything);
    expect(JSON.parse((await state())!.desired!)).toMatchObject({
      generation: request.generation,
    });
    expect(await builder.apply(request)).toMatchObject({ changed: false });
  });
});

describe('namespace ownership', () => {
  it('attack: a flake whose namespace name collides with another’s cannot take it over', async () => {
    const [victim, attacker] = collidingFlakeUris();
    const namespace = deriveNamespace(victim);
    expect(deriveNamespace(attacker)).toBe(namespace);
    await builder.apply(generation(victim, [web()]));
    const before = await cluster.versions(namespace);

    const refused = await builder.refused(generation(attacker, [meta('evil')]));
    expect(refused.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(refused.details).toContain('belongs to another flake');
    expect(await cluster.versions(namespace)).toEqual(before);
    const owner = await cluster.core.readNamespace({ name: namespace });
    expect(owner.metadata?.annotations).toMatchObject({
      'seed.loom.farm/flake-uri': victim,
      'seed.loom.farm/flake-sha256': flakeUriDigest(victim),
    });
    await cluster.until(
      async () => (await cluster.events(namespace)).some((e) => e.reason === 'ForeignFlakeRefused'),
      'the ForeignFlakeRefused Event',
    );
    const url = (await world!.app.http.getUrl()).replace('[::1]', '127.0.0.1');
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(
      /seed_reconciler_namespace_conflicts_total 1/,
    );
    // The rightful flake still applies.
    expect(await builder.apply(generation(victim, [web('m')]))).toMatchObject({ changed: true });
  });
});

describe('isolation and errors', () => {
  it('gives a second flake its own namespace without touching the first', async () => {
    const before = await cluster.versions(NS);
    const other = 'github:acme/blog';
    await builder.apply(
      generation(other, [meta('blog', { expose: { http: { port: 80, protocol: 'http' } } })]),
    );
    expect(await cluster.names(deriveNamespace(other))).toEqual([
      'ConfigMap/seed-state',
      'Deployment/blog',
      'Service/blog',
    ]);
    expect(await cluster.versions(NS)).toEqual(before);
  });

  it('reports an object the API server rejects, and still applies the other instances', async () => {
    const flake = 'github:acme/broken';
    // A size the schema lets through but the API server refuses (the Nix library would not).
    const bad = meta('bad', { storage: { data: { size: '0', mountPoint: '/data' } } });
    const good = meta('good', { expose: { http: { port: 8080, protocol: 'http' } } });
    const error = await builder.refused(generation(flake, [bad, good]));
    expect(error.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(error.details).toMatch(/^instance bad: PersistentVolumeClaim seed-bad-data: .*storage/);
    const namespace = deriveNamespace(flake);
    expect(await cluster.names(namespace)).toEqual(
      expect.arrayContaining(['Deployment/good', 'Service/good']),
    );
    expect((await builder.status(flake)).lastError).toContain('instance bad');
    const listed = await builder.list();
    expect(listed.find((status) => status.flakeUri === flake)).toMatchObject({
      namespace,
      lastError: expect.stringContaining('instance bad'),
    });
    expect(listed.find((status) => status.flakeUri === FLAKE)).toMatchObject({ lastError: '' });
    // Events are sent in the background, shortly after the answer.
    await cluster.until(
      async () => (await cluster.events(namespace)).some((e) => e.reason === 'ApplyFailed'),
      'the ApplyFailed Event',
    );
  });

  it('refuses an invalid generation with a clear status', async () => {
    const request = generation('github:acme/invalid', [meta('web')]);
    const wrongNamespace = await builder.refused({ ...request, namespace: 's-aaaaaaaaaaaa' });
    expect(wrongNamespace.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(wrongNamespace.details).toContain("is not the flake's");
    const badMeta = await builder.refused({
      ...request,
      instances: [{ name: 'web', metaJson: '{"name":"web"}', image: '/nix/store/x' }],
    });
    expect(badMeta.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(badMeta.details).toContain('instance web: meta.');
    expect((await builder.refused({ ...request, flakeUri: 'nixpkgs' })).code).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    const unknown = await new Promise<grpc.ServiceError>((resolve) =>
      builder.operator.getStatus({ flakeUri: 'github:acme/never' }, (e) => resolve(e!)),
    );
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
  });

  it('survives an API server restart', async () => {
    await api.restart();
    await builder.apply(generation(FLAKE, [web('s'), dns]));
    expect(
      (await cluster.deployment(NS, 'web'))?.spec?.template.metadata?.annotations?.[
        'io.katacontainers.config.hypervisor.default_memory'
      ],
    ).toBe('1024');
    await cluster.apps.deleteNamespacedDeployment({ namespace: NS, name: 'web' });
    await cluster.until(
      async () => (await cluster.deployment(NS, 'web')) !== undefined,
      'drift repair after the restart',
    );
  });

  it('serves health over gRPC and probes over HTTP', async () => {
    const url = (await world!.app.http.getUrl()).replace('[::1]', '127.0.0.1');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/seed_reconciler_writes_total\{kind="Deployment",verb="apply"\} \d+/);
    expect(metrics).toMatch(/seed_reconciler_generations_total\{result="unchanged"\} [1-9]/);
  });
});
