// A flake's bounds against a real API server, which enforces them: the ResourceQuota and
// LimitRange the reconciler keeps in every flake namespace, with the registry's caps, and
// a generation beyond its caps refused before anything is written. The quota's usage is
// computed by kube-controller-manager's resource quota controller (without it the API
// server admits everything: a quota counts only once its status is known); no node runs.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { ApiException, type V1Pod } from '@kubernetes/client-node';
import { DEFAULT_FLAKE_QUOTA, deriveNamespace, type FlakeQuota } from '@seed/contracts';
import { startQuotaController, type QuotaController } from '@seed/testing';
import { generation, meta, startReconcilerWorld, type ReconcilerWorld } from './cluster';

const FLAKE = 'github:acme/bounded';
const NS = deriveNamespace(FLAKE);

// One `s` instance requests 250m + 250m of the VM's overhead; no kata RuntimeClass exists
// on this API server, so its pods would count 250m: the caps leave room for bare pods.
const CAPS: FlakeQuota = {
  cpu: '2',
  memory: '8Gi',
  storage: '10Gi',
  pods: 3,
  persistentvolumeclaims: 2,
  services: 2,
};

let world: ReconcilerWorld | undefined;
let quotaController: QuotaController | undefined;

beforeAll(async () => {
  world = await startReconcilerWorld();
  quotaController = await startQuotaController(world.api);
}, 20 * 60_000);

afterAll(async () => {
  await quotaController?.stop();
  await world?.stop();
});

const web = meta('web', {
  expose: { http: { port: 8080, protocol: 'http' } },
  storage: { data: { size: '1Gi', mountPoint: '/data' } },
});

/** A pod made straight through the API, as a tenant holding credentials could. */
function barePod(name: string, cpu?: string): V1Pod {
  return {
    metadata: { name },
    spec: {
      containers: [
        {
          name: 'x',
          image: `nix:0/nix/store/${'0'.repeat(32)}-x`,
          ...(cpu && { resources: { requests: { cpu } } }),
        },
      ],
    },
  };
}

/** The status and message the API server answers a pod's creation with. */
async function createPod(pod: V1Pod): Promise<{ status: number; message: string }> {
  try {
    await world!.cluster.core.createNamespacedPod({ namespace: NS, body: pod });
    return { status: 201, message: '' };
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    const body = (typeof error.body === 'string' ? JSON.parse(error.body) : error.body) as {
      message?: string;
    };
    return { status: error.code, message: body.message ?? '' };
  }
}

describe("a flake's bounds", () => {
  it("are the registry's caps in its namespace: a ResourceQuota and a LimitRange", async () => {
    await world!.builder.apply({ ...generation(FLAKE, [web]), quota: CAPS });
    const quota = await world!.cluster.core.readNamespacedResourceQuota({
      namespace: NS,
      name: 'seed.quota',
    });
    expect(quota.spec?.hard).toEqual({
      'requests.cpu': '2',
      'requests.memory': '8Gi',
      'requests.storage': '10Gi',
      pods: '3',
      persistentvolumeclaims: '2',
      services: '2',
    });
    expect(quota.metadata?.labels).toEqual({ 'seed.loom.farm/managed-by': 'seed' });
    const limits = await world!.cluster.core.readNamespacedLimitRange({
      namespace: NS,
      name: 'seed.limits',
    });
    expect(limits.spec?.limits).toEqual([
      { type: 'Container', defaultRequest: { cpu: '250m', memory: '512Mi' } },
      { type: 'PersistentVolumeClaim', max: { storage: '16Ti' } },
    ]);
  });

  it('attack: a tenant exceeding its flake’s quota is refused by the API server', async () => {
    // The controller has counted the flake's claim and Service: the quota is enforced.
    await world!.cluster.until(async () => {
      const quota = await world!.cluster.core.readNamespacedResourceQuota({
        namespace: NS,
        name: 'seed.quota',
      });
      return quota.status?.used?.services === '1';
    }, 'the quota controller to count the namespace');

    const greedy = await createPod(barePod('greedy', '64'));
    expect(greedy.status).toBe(403);
    expect(greedy.message).toMatch(
      /exceeded quota: seed\.quota, requested: requests\.cpu=64, used: requests\.cpu=0, limited: requests\.cpu=2/,
    );

    // Bare pods without requests get the LimitRange's and count: three fit, the fourth not.
    const answers = [];
    for (const name of ['one', 'two', 'three', 'four'])
      answers.push(await createPod(barePod(name)));
    expect(answers.map((answer) => answer.status)).toEqual([201, 201, 201, 403]);
    expect(answers[3]?.message).toMatch(
      /exceeded quota: seed\.quota, requested: pods=1, used: pods=3, limited: pods=3/,
    );
    const one = await world!.cluster.core.readNamespacedPod({ namespace: NS, name: 'one' });
    expect(one.spec?.containers[0]?.resources?.requests).toEqual({ cpu: '250m', memory: '512Mi' });
  });

  it('are refused early, naming the cap, when the instances exceed them; nothing is written', async () => {
    const before = await world!.cluster.versions(NS);
    const tooMany = [web, meta('api', { rollout: 'rolling' }), meta('worker')];
    const refused = await world!.builder.refused({
      ...generation(FLAKE, tooMany, 'b'.repeat(40)),
      quota: CAPS,
    });
    expect(refused.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(refused.details).toBe(
      "exceeds the flake's caps: quota.pods: the instances request 4 at their peak (a rolling instance runs two pods while it rolls), above the flake's cap of 3",
    );
    expect(await world!.cluster.versions(NS)).toEqual(before);
  });

  it('follow the registry: new caps are applied with the same generation', async () => {
    await world!.builder.apply({ ...generation(FLAKE, [web]), quota: { ...CAPS, pods: 5 } });
    const quota = await world!.cluster.core.readNamespacedResourceQuota({
      namespace: NS,
      name: 'seed.quota',
    });
    expect(quota.spec?.hard?.pods).toBe('5');
  });

  it('are the defaults when the builder sends no caps, and come back when deleted', async () => {
    const other = 'github:acme/unbounded';
    const namespace = deriveNamespace(other);
    await world!.builder.apply(generation(other, [meta('worker')]));
    const read = () =>
      world!.cluster.core.readNamespacedResourceQuota({ namespace, name: 'seed.quota' });
    expect((await read()).spec?.hard?.['requests.cpu']).toBe(DEFAULT_FLAKE_QUOTA.cpu);
    await world!.cluster.core.deleteNamespacedResourceQuota({ namespace, name: 'seed.quota' });
    await world!.cluster.until(
      () =>
        read().then(
          () => true,
          () => false,
        ),
      'seed.quota to be put back',
    );
  });
});
