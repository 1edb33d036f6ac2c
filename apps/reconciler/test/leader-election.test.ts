import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startKubeApiServer, type KubeApiServer } from '@seed/testing';
import { LeaderElector, type LeaseStore } from '../src/controller/leader-election';
import { KubeRepository } from '../src/repositories/kube.repository';
import { Cluster } from './cluster';

const LEASE_MS = 1500;
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let api: KubeApiServer;
let kube: KubeRepository;

beforeAll(async () => {
  api = await startKubeApiServer();
  kube = KubeRepository.fromKubeconfig(api.kubeconfigPath);
  await new Cluster(api.kubeconfigPath).core.createNamespace({
    body: { metadata: { name: 'seed-system' } },
  });
}, 20 * 60_000);

afterAll(async () => {
  await api?.stop();
});

/** A replica's elector on the real Lease, and when it started and stopped leading. */
function replica(name: string, lease: LeaseStore) {
  const seen = { started: 0, stopped: 0 };
  const elector = new LeaderElector(
    lease,
    { identity: name, leaseMs: LEASE_MS, renewDeadlineMs: LEASE_MS * (2 / 3), retryMs: 200 },
    {
      onStartedLeading: () => (seen.started = Date.now()),
      onStoppedLeading: () => (seen.stopped = Date.now()),
      onError: () => undefined,
    },
  );
  return { elector, seen };
}

/** A Lease the test can cut off, as a network partition or a killed process would. */
function severable(store: LeaseStore) {
  let cut = false;
  const guard = <R>(call: () => Promise<R>) =>
    cut ? Promise.reject(new Error('cut off')) : call();
  const cutOff: LeaseStore = {
    get: () => guard(() => store.get()),
    create: (record) => guard(() => store.create(record)),
    update: (record, version) => guard(() => store.update(record, version)),
  };
  return {
    store: cutOff,
    cut: () => (cut = true),
  };
}

describe('leader election on a Lease', () => {
  it('lets one replica lead; another takes over within the lease once the leader is gone', async () => {
    const first = severable(kube.lease('seed-system', 'failover'));
    const a = replica('a', first.store);
    const b = replica('b', kube.lease('seed-system', 'failover'));
    a.elector.start();
    await tick(500);
    b.elector.start();
    await tick(1000);
    expect([a.elector.isLeader, b.elector.isLeader]).toEqual([true, false]);

    // The leader is cut off: it stops leading before its lease ends, so the two never
    // overlap, and the other leads within a lease (plus one retry) of the last renewal.
    const cutAt = Date.now();
    first.cut();
    while (!b.elector.isLeader) {
      expect(a.elector.isLeader && b.elector.isLeader).toBe(false);
      await tick(50);
    }
    expect(a.seen.stopped).toBeGreaterThan(0);
    expect(a.seen.stopped).toBeLessThan(b.seen.started);
    expect(b.seen.started - cutAt).toBeLessThan(LEASE_MS + 2 * 200 + 500);
    const lease = await kube.lease('seed-system', 'failover').get();
    expect(lease?.record).toMatchObject({ holder: 'b', transitions: 1 });
    await Promise.all([a.elector.stop(), b.elector.stop()]);
  });

  it('hands the lease over at once when the leader stops cleanly', async () => {
    const a = replica('a', kube.lease('seed-system', 'release'));
    const b = replica('b', kube.lease('seed-system', 'release'));
    a.elector.start();
    await tick(500);
    b.elector.start();
    await tick(300);
    const stoppedAt = Date.now();
    await a.elector.stop();
    while (!b.elector.isLeader) await tick(20);
    // Well within the lease: the released lease is free, not waited out.
    expect(Date.now() - stoppedAt).toBeLessThan(LEASE_MS);
    await b.elector.stop();
  });

  it('never lets two replicas win one race for a free lease', async () => {
    const replicas = ['a', 'b', 'c'].map((name) =>
      replica(name, kube.lease('seed-system', 'race')),
    );
    replicas.forEach(({ elector }) => elector.start());
    await tick(1000);
    expect(replicas.filter(({ elector }) => elector.isLeader)).toHaveLength(1);
    await Promise.all(replicas.map(({ elector }) => elector.stop()));
  });
});
