import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { deriveNamespace } from '@seed/contracts';
import {
  apiWrites,
  freeLoopbackPorts,
  splitEvents,
  writesBetween,
  startKubeApiServer,
  startServiceProcess,
  type KubeApiServer,
  type ServiceProcess,
} from '@seed/testing';
import { Builder, Cluster, generation, meta, testCertificates } from './cluster';

const MAIN = path.resolve(__dirname, '../dist/main.js');
const LEASE_SECONDS = 3;

interface Replica {
  process: ServiceProcess;
  builder: Builder;
}

describe('two reconciler replicas with leader election', () => {
  let api: KubeApiServer;
  let cluster: Cluster;
  const replicas: Replica[] = [];

  async function replica(): Promise<Replica> {
    const [port] = await freeLoopbackPorts(1);
    const certs = await testCertificates();
    const process = startServiceProcess(MAIN, {
      SEED_KUBECONFIG: api.kubeconfigPath,
      SEED_TLS_DIR: certs.reconciler,
      SEED_RECONCILER_GRPC_PORT: String(port),
      SEED_RECONCILER_HTTP_PORT: '0',
      SEED_LEASE_NAMESPACE: 'seed-system',
      SEED_LEASE_SECONDS: String(LEASE_SECONDS),
    });
    await process.waitForLog((line) => line.msg === 'reconciler listening');
    const started = { process, builder: new Builder(`127.0.0.1:${port}`, certs) };
    replicas.push(started);
    return started;
  }

  const leads = (replica: Replica) =>
    replica.process.logs.some((line) => line.msg === 'leading: reconciling every flake');

  beforeAll(async () => {
    api = await startKubeApiServer();
    cluster = new Cluster(api.kubeconfigPath);
    await cluster.core.createNamespace({ body: { metadata: { name: 'seed-system' } } });
  }, 20 * 60_000);

  afterAll(async () => {
    for (const { process, builder } of replicas) {
      builder.close();
      process.kill('SIGKILL');
    }
    await api?.stop();
  });

  it('answers ApplyGeneration on the replica that does not lead, and fails over within the lease', async () => {
    const leader = await replica();
    await leader.process.waitForLog((line) => line.msg === 'leading: reconciling every flake');
    const follower = await replica();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(leads(follower)).toBe(false);

    // The follower stores the desired state and answers once the leader has applied it.
    const flake = 'github:acme/ha';
    const namespace = deriveNamespace(flake);
    const first = generation(flake, [
      meta('web', { expose: { http: { port: 80, protocol: 'http' } } }),
    ]);
    expect(await follower.builder.apply(first)).toEqual({
      changed: true,
      generation: first.generation,
    });
    expect(await cluster.names(namespace)).toEqual([
      'ConfigMap/seed-state',
      'Deployment/web',
      'Service/web',
    ]);
    expect(await follower.builder.apply(first)).toMatchObject({ changed: false });
    expect((await follower.builder.status(flake)).generation).toBe(first.generation);
    // A new generation of a flake with a stored state, as the API server counts its writes.
    // Through the leader the state is written once (the generation with its outcome);
    // through the follower twice: the follower stores the generation in `seed-state` (the
    // only way it has to hand it to the leader, whose watch takes it from there), then the
    // leader's reconcile records the outcome. One write there would need the follower to
    // forward the call to the leader (docs/reconciler.md, "Replicas").
    const stateWrites = async (replica: Replica, size: 's' | 'm') => {
      const before = await apiWrites(api);
      const pushed = generation(flake, [
        meta('web', { size, expose: { http: { port: 80, protocol: 'http' } } }),
        meta('api'),
      ]);
      expect(await replica.builder.apply(pushed)).toEqual({
        changed: true,
        generation: pushed.generation,
      });
      const { objects } = splitEvents(writesBetween(before, await apiWrites(api)));
      expect(objects.get('APPLY deployments')).toBeGreaterThan(0);
      return objects.get('APPLY configmaps');
    };
    expect(await stateWrites(follower, 's')).toBe(2);
    expect(await stateWrites(leader, 'm')).toBe(1);
    // A refusal comes back through the follower too.
    const bad = generation(flake, [
      meta('bad', { storage: { data: { size: '0', mountPoint: '/d' } } }),
    ]);
    expect((await follower.builder.refused(bad)).code).toBe(grpc.status.FAILED_PRECONDITION);

    // Kill the leader: the follower takes over within the lease and converges a
    // generation it was handed while it did not lead yet.
    leader.process.kill('SIGKILL');
    const killedAt = Date.now();
    const second = generation(flake, [meta('web'), meta('api')]);
    expect(await follower.builder.apply(second)).toEqual({
      changed: true,
      generation: second.generation,
    });
    const tookOver = await follower.process.waitForLog(
      (line) => line.msg === 'leading: reconciling every flake',
    );
    // The lease, counted from the last renewal the follower saw (before the kill), plus
    // one retry (0.4 s) and the API server's answers on a loaded machine: 3.6 s measured.
    expect((tookOver.time as number) - killedAt).toBeLessThan(LEASE_SECONDS * 1000 + 1500);
    expect(await cluster.names(namespace)).toEqual([
      'ConfigMap/seed-state',
      'Deployment/api',
      'Deployment/web',
    ]);
    // And it repairs drift from now on.
    await cluster.apps.deleteNamespacedDeployment({ namespace, name: 'api' });
    await cluster.until(
      async () => (await cluster.deployment(namespace, 'api')) !== undefined,
      'the new leader to restore the Deployment',
    );
  });
});
