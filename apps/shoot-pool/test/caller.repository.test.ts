// KubeCallerResolver against a real API server: real TokenRequests and TokenReviews, with
// pods whose statuses are written through their status subresource, as a kubelet would
// (the real-node path, seed-shoot in a pod, is `seed up`'s test). Each refusal is one
// attack of docs/security.md.
import { createSign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { SHOOT_TOKEN_AUDIENCE } from '@seed/contracts';
import { startKubeApiServer, type KubeApiServer } from '@seed/testing';
import { CallerRejected, type CallerClaim } from '../src/caller/caller';
import { KubeCallerResolver } from '../src/caller/caller.repository';

const NAMESPACE = 'seed-shoot-test';
const FOREIGN_NAMESPACE = 'not-seed';
const NODE = 'seed-node';
/** The instance's image: a store path (the closure itself is the shoot's business). */
const IMAGE = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-instance-image';
let api: KubeApiServer;
let core: CoreV1Api;
let resolver: KubeCallerResolver;

interface PodShape {
  name: string;
  ip: string;
  namespace?: string;
  node?: string;
  labelled?: boolean;
  shoots?: boolean;
  claim?: string;
  image?: string;
}

/** Creates a Running pod and returns a token bound to it (audience seed-shoot unless given). */
async function runningPod(shape: PodShape): Promise<V1Pod> {
  const namespace = shape.namespace ?? NAMESPACE;
  const pod: V1Pod = {
    metadata: {
      name: shape.name,
      namespace,
      labels: shape.labelled === false ? { app: 'other' } : { 'seed.loom.farm/managed-by': 'seed' },
    },
    spec: {
      nodeName: shape.node ?? NODE,
      serviceAccountName: 'default',
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'instance',
          image: shape.image ?? `nix:0${IMAGE}`,
          env:
            shape.shoots === false
              ? []
              : [{ name: 'SEED_SHOOT_URL', value: 'http://10.0.0.1:7070' }],
          volumeMounts:
            shape.claim === undefined ? [] : [{ name: 'data', mountPath: '/var/lib/app' }],
        },
      ],
      volumes:
        shape.claim === undefined
          ? []
          : [{ name: 'data', persistentVolumeClaim: { claimName: shape.claim } }],
    },
  };
  const created = await core.createNamespacedPod({ namespace, body: pod });
  created.status = { phase: 'Running', podIP: shape.ip, podIPs: [{ ip: shape.ip }] };
  return core.replaceNamespacedPodStatus({ name: shape.name, namespace, body: created });
}

/** What the kubelet projects into the pod: a token bound to it, for `audience`. */
async function tokenOf(pod: V1Pod, audience = SHOOT_TOKEN_AUDIENCE): Promise<string> {
  const request = await core.createNamespacedServiceAccountToken({
    name: 'default',
    namespace: pod.metadata!.namespace!,
    body: {
      spec: {
        audiences: [audience],
        expirationSeconds: 600,
        boundObjectRef: {
          kind: 'Pod',
          apiVersion: 'v1',
          name: pod.metadata!.name!,
          uid: pod.metadata!.uid!,
        },
      },
    },
  });
  return request.status!.token;
}

/**
 * A token like the kubelet's for `pod`, signed with the cluster's own key, but expired an
 * hour ago (TokenRequest will not issue one shorter than ten minutes).
 */
async function expiredTokenOf(pod: V1Pod): Promise<string> {
  const account = await core.readNamespacedServiceAccount({
    name: 'default',
    namespace: pod.metadata!.namespace!,
  });
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const claims = {
    iss: `https://127.0.0.1:${new URL(api.url).port}`,
    aud: [SHOOT_TOKEN_AUDIENCE],
    sub: `system:serviceaccount:${pod.metadata!.namespace!}:default`,
    iat: now - 7200,
    nbf: now - 7200,
    exp: now - 3600,
    'kubernetes.io': {
      namespace: pod.metadata!.namespace!,
      pod: { name: pod.metadata!.name!, uid: pod.metadata!.uid! },
      serviceaccount: { name: 'default', uid: account.metadata!.uid! },
    },
  };
  const unsigned = `${encode({ alg: 'RS256', typ: 'JWT' })}.${encode(claims)}`;
  const key = await readFile(api.serviceAccountPrivateKeyPath, 'utf8');
  const signature = createSign('RSA-SHA256').update(unsigned).sign(key).toString('base64url');
  return `${unsigned}.${signature}`;
}

async function claim(name: string, volumeName?: string): Promise<void> {
  const created = await core.createNamespacedPersistentVolumeClaim({
    namespace: NAMESPACE,
    body: {
      metadata: { name },
      spec: {
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
        ...(volumeName === undefined ? {} : { volumeName }),
      },
    },
  });
  if (volumeName === undefined) return;
  created.status = { phase: 'Bound' };
  await core.replaceNamespacedPersistentVolumeClaimStatus({
    name,
    namespace: NAMESPACE,
    body: created,
  });
}

async function rejection(claim: CallerClaim): Promise<CallerRejected> {
  const error = await resolver.resolve(claim).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(CallerRejected);
  return error as CallerRejected;
}

const pods: Record<string, V1Pod> = {};
const tokens: Record<string, string> = {};

beforeAll(async () => {
  api = await startKubeApiServer();
  const config = new KubeConfig();
  config.loadFromFile(api.kubeconfigPath);
  core = config.makeApiClient(CoreV1Api);
  resolver = new KubeCallerResolver(config, '/nix/store', NODE);
  for (const [name, labels] of [
    [NAMESPACE, { 'seed.loom.farm/managed-by': 'seed' }],
    [FOREIGN_NAMESPACE, {}],
  ] as const) {
    await core.createNamespace({ body: { metadata: { name, labels } } });
    await core.createNamespacedServiceAccount({
      namespace: name,
      body: { metadata: { name: 'default' } },
    });
  }
  await core.createPersistentVolume({
    body: {
      metadata: { name: 'pv-data' },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        hostPath: { path: '/srv/volumes/data' },
        claimRef: { namespace: NAMESPACE, name: 'data' },
      },
    },
  });
  await claim('data', 'pv-data');
  await claim('pending');
  for (const shape of [
    { name: 'instance', ip: '127.0.0.5', claim: 'data' },
    { name: 'stranger', ip: '127.0.0.6', labelled: false },
    { name: 'neighbour', ip: '127.0.0.7' },
    { name: 'no-shoots', ip: '127.0.0.8', shoots: false },
    { name: 'unbound', ip: '127.0.0.9', claim: 'pending' },
    { name: 'elsewhere', ip: '127.0.0.10', node: 'another-node' },
    { name: 'outsider', ip: '127.0.0.11', namespace: FOREIGN_NAMESPACE },
    { name: 'registry', ip: '127.0.0.12', image: 'docker.io/library/busybox:latest' },
  ]) {
    pods[shape.name] = await runningPod(shape);
    tokens[shape.name] = await tokenOf(pods[shape.name]!);
  }
}, 120_000);

afterAll(async () => {
  await api?.stop();
});

describe('KubeCallerResolver', () => {
  it('finds the pod its token names, with its volumes on the host', async () => {
    expect(await resolver.resolve({ ip: '::ffff:127.0.0.5', token: tokens.instance })).toEqual({
      key: `${NAMESPACE}/instance`,
      store: '/nix/store',
      image: IMAGE,
      volumes: [{ hostPath: '/srv/volumes/data', mountPoint: '/var/lib/app' }],
    });
  });

  it('attack: a source IP alone (no token) is refused', async () => {
    const error = await rejection({ ip: '127.0.0.5' });
    expect(error.reason).toBe('unauthenticated');
    expect(error.message).toMatch(/no token/);
  });

  it("attack: another pod's token is refused", async () => {
    const error = await rejection({ ip: '127.0.0.5', token: tokens.neighbour });
    expect(error.reason).toBe('forbidden');
    expect(error.message).toMatch(/the token is pod seed-shoot-test\/neighbour's.*127\.0\.0\.5/);
  });

  it('attack: a token for another audience is refused', async () => {
    const error = await rejection({
      ip: '127.0.0.5',
      token: await tokenOf(pods.instance!, 'https://kubernetes.default.svc'),
    });
    expect(error.reason).toBe('unauthenticated');
    expect(error.message).toMatch(/does not accept the token for seed-shoot/);
  });

  it('attack: an expired token is refused', async () => {
    const error = await rejection({ ip: '127.0.0.5', token: await expiredTokenOf(pods.instance!) });
    expect(error.reason).toBe('unauthenticated');
    expect(error.message).toMatch(/does not accept the token.*expired/);
  });

  it('attack: a pod on another node is refused', async () => {
    const error = await rejection({ ip: '127.0.0.10', token: tokens.elsewhere });
    expect(error.reason).toBe('forbidden');
    expect(error.message).toMatch(/runs on node another-node, not on this pool's node seed-node/);
  });

  it("attack: a pod outside Seed's namespaces is refused", async () => {
    const error = await rejection({ ip: '127.0.0.11', token: tokens.outsider });
    expect(error.reason).toBe('forbidden');
    expect(error.message).toMatch(/namespace not-seed, which Seed does not manage/);
  });

  it('attack: the right token from the wrong IP is refused', async () => {
    const error = await rejection({ ip: '127.0.0.99', token: tokens.instance });
    expect(error.reason).toBe('forbidden');
    expect(error.message).toMatch(/came from 127\.0\.0\.99, not from its IP 127\.0\.0\.5/);
  });

  it('refuses a token that is not a token', async () => {
    const error = await rejection({ ip: '127.0.0.5', token: 'not-a-token' });
    expect(error.reason).toBe('unauthenticated');
  });

  it('refuses a pod without the Seed label', async () => {
    const error = await rejection({ ip: '127.0.0.6', token: tokens.stranger });
    expect(error.reason).toBe('forbidden');
    expect(error.message).toMatch(/stranger is not labelled seed\.loom\.farm\/managed-by=seed/);
  });

  it('refuses a pod that has not enabled shoots', async () => {
    const error = await rejection({ ip: '127.0.0.8', token: tokens['no-shoots'] });
    expect(error.reason).toBe('forbidden');
    expect(error.message).toMatch(/no-shoots has not enabled shoots/);
  });

  it('refuses a pod whose image is not a path of the node store: there is no closure to show', async () => {
    const error = await rejection({ ip: '127.0.0.12', token: tokens.registry });
    expect(error.reason).toBe('unresolvable');
    expect(error.message).toMatch(
      /image docker\.io\/library\/busybox:latest is not a path of the store \/nix\/store/,
    );
  });

  it('refuses a pod whose claim is not bound', async () => {
    const error = await rejection({ ip: '127.0.0.9', token: tokens.unbound });
    expect(error.reason).toBe('unresolvable');
    expect(error.message).toMatch(/claim seed-shoot-test\/pending is not bound/);
  });

  it('refuses the token of a pod that was deleted', async () => {
    const pod = await runningPod({ name: 'gone', ip: '127.0.0.12' });
    const token = await tokenOf(pod);
    await core.deleteNamespacedPod({ name: 'gone', namespace: NAMESPACE, gracePeriodSeconds: 0 });
    const error = await rejection({ ip: '127.0.0.12', token });
    expect(error.reason).toBe('unauthenticated');
  });
});
