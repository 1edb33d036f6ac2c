// The NetworkPolicies the reconciler keeps in every flake namespace, against a real API
// server (which validates them): applied, pruned with their instance, put back after a
// hand delete, and left alone by a push that does not change them. Their enforcement is
// network-policy.test.ts's, on the real node.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig, NetworkingV1Api } from '@kubernetes/client-node';
import { deriveNamespace } from '@seed/contracts';
import { kubeRequest } from '@seed/testing';
import {
  generation,
  meta,
  startReconcilerWorld,
  type Builder,
  type ReconcilerWorld,
} from './cluster';

const FLAKE = 'github:acme/walled';
const NS = deriveNamespace(FLAKE);
const FLAKE_POLICIES = [
  'seed.allow-dns',
  'seed.allow-internet',
  'seed.allow-same-flake',
  'seed.allow-to-flakes',
  'seed.default-deny',
];

let world: ReconcilerWorld | undefined;
let builder: Builder;
let networking: NetworkingV1Api;

const web = (port = 8080) => meta('web', { expose: { http: { port, protocol: 'http' } } });
const shooter = meta('shooter', { shoot: { enable: true } });
const worker = meta('worker');

/** name → resourceVersion of the namespace's NetworkPolicies. */
async function policies(): Promise<Record<string, string>> {
  const list = await networking.listNamespacedNetworkPolicy({ namespace: NS });
  return Object.fromEntries(
    list.items.map((policy) => [policy.metadata!.name!, policy.metadata!.resourceVersion!]),
  );
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 30_000; !(await condition());) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  world = await startReconcilerWorld();
  builder = world.builder;
  const config = new KubeConfig();
  config.loadFromFile(world.api.kubeconfigPath);
  networking = config.makeApiClient(NetworkingV1Api);
}, 20 * 60_000);

afterAll(async () => {
  await world?.stop();
});

describe("a flake's NetworkPolicies", () => {
  it('are applied with the flake: its own, and one per instance that exposes or shoots', async () => {
    await builder.apply(generation(FLAKE, [web(), shooter, worker], 'a'.repeat(40)));
    expect(Object.keys(await policies()).sort()).toEqual(
      ['shooter', 'web', ...FLAKE_POLICIES].sort(),
    );
    const web8080 = await networking.readNamespacedNetworkPolicy({ namespace: NS, name: 'web' });
    expect(web8080.spec?.ingress).toEqual([{ ports: [{ port: 8080, protocol: 'TCP' }] }]);
  });

  it('are stored as rendered: ingress peers included (client-node names them `_from`)', async () => {
    // Raw JSON: client-node's own models would show `from` as `_from`.
    const { body } = await kubeRequest(
      world!.api,
      'GET',
      `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/seed.allow-same-flake`,
    );
    expect((body as { spec: unknown }).spec).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: {} }] }],
      egress: [{ to: [{ podSelector: {} }] }],
    });
  });

  it("the flake's own stay as they are when a push changes an instance", async () => {
    const before = await policies();
    await builder.apply(generation(FLAKE, [web(8081), shooter, worker], 'b'.repeat(40)));
    const after = await policies();
    for (const name of FLAKE_POLICIES) expect(after[name]).toBe(before[name]);
    const web8081 = await networking.readNamespacedNetworkPolicy({ namespace: NS, name: 'web' });
    expect(web8081.spec?.ingress).toEqual([{ ports: [{ port: 8081, protocol: 'TCP' }] }]);
  });

  it('go with their instance, and the flake keeps its own', async () => {
    await builder.apply(generation(FLAKE, [worker], 'c'.repeat(40)));
    await until(
      async () => Object.keys(await policies()).length === FLAKE_POLICIES.length,
      'the instances’ policies to be pruned',
    );
    expect(Object.keys(await policies()).sort()).toEqual(FLAKE_POLICIES);
  });

  it('come back when deleted by hand', async () => {
    await networking.deleteNamespacedNetworkPolicy({ namespace: NS, name: 'seed.default-deny' });
    await until(
      async () => 'seed.default-deny' in (await policies()),
      'seed.default-deny to be put back',
    );
  });
});
