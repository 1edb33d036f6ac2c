import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { deriveNamespace } from '@seed/contracts';
import {
  freeLoopbackPorts,
  startKubeApiServer,
  startServiceProcess,
  type KubeApiServer,
  type ServiceProcess,
} from '@seed/testing';
import { Builder, Cluster, generation, meta, testCertificates } from './cluster';

const MAIN = path.resolve(__dirname, '../dist/main.js');

describe('the reconciler process', () => {
  let api: KubeApiServer;
  let cluster: Cluster;
  const processes: ServiceProcess[] = [];

  async function reconciler(grpcPort: number): Promise<ServiceProcess> {
    const process = startServiceProcess(MAIN, {
      SEED_KUBECONFIG: api.kubeconfigPath,
      SEED_TLS_DIR: (await testCertificates()).reconciler,
      SEED_RECONCILER_GRPC_PORT: String(grpcPort),
      SEED_RECONCILER_HTTP_PORT: '0',
    });
    processes.push(process);
    await process.waitForLog((line) => line.msg === 'reconciler listening');
    return process;
  }

  beforeAll(async () => {
    api = await startKubeApiServer();
    cluster = new Cluster(api.kubeconfigPath);
  }, 20 * 60_000);

  afterAll(async () => {
    for (const process of processes) process.kill('SIGKILL');
    await api?.stop();
  });

  it('converges after being killed mid-apply, without a new push', async () => {
    const [port] = await freeLoopbackPorts(1);
    const first = await reconciler(port!);
    const flake = 'github:acme/big';
    const metas = Array.from({ length: 60 }, (_, i) =>
      meta(`app-${i}`, { expose: { http: { port: 8080, protocol: 'http' } } }),
    );
    const builder = new Builder(`127.0.0.1:${port}`, await testCertificates());
    const call = builder.apply(generation(flake, metas)).catch((error: grpc.ServiceError) => error);
    const namespace = deriveNamespace(flake);
    await cluster.until(
      async () => (await cluster.names(namespace)).some((name) => name.startsWith('Deployment/')),
      'the apply to start',
      30_000,
    );
    first.kill('SIGKILL');
    await first.exited;
    await call;
    builder.close();
    const writtenBeforeKill = (await cluster.names(namespace)).length;

    await reconciler(port!);
    await cluster.until(
      async () =>
        (await cluster.names(namespace)).filter((name) => name.startsWith('Service/')).length ===
        60,
      'the restarted reconciler to converge',
      60_000,
    );
    // Killed mid-apply: the restarted reconciler wrote what the first one had not.
    expect(writtenBeforeKill).toBeLessThan((await cluster.names(namespace)).length);
    const again = new Builder(`127.0.0.1:${port}`, await testCertificates());
    expect((await again.status(flake)).lastError).toBe('');
    expect(await again.apply(generation(flake, metas))).toMatchObject({ changed: false });
    again.close();
  });

  it('keeps a running flake on its stored generation when killed mid-push, until the push is retried', async () => {
    // No lease here, so every reconciler leads: the test before's would reconcile this
    // flake as well, from the stored generation.
    for (const running of processes) running.kill('SIGKILL');
    const [port] = await freeLoopbackPorts(1);
    const first = await reconciler(port!);
    const flake = 'github:acme/pushed';
    const namespace = deriveNamespace(flake);
    const metas = Array.from({ length: 60 }, (_, i) => meta(`app-${i}`, {}));
    const builder = new Builder(`127.0.0.1:${port}`, await testCertificates());
    const stored = generation(flake, metas);
    await builder.apply(stored);
    const newImage = '1'.repeat(32);
    const push = generation(
      flake,
      metas,
      'b'.repeat(40),
      Object.fromEntries(metas.map(({ name }) => [name, `/nix/store/${newImage}-seed-${name}`])),
    );
    const pushed = async () =>
      (await cluster.apps.listNamespacedDeployment({ namespace })).items.filter((deployment) =>
        deployment.spec?.template.spec?.containers[0]?.image?.includes(newImage),
      ).length;

    // The push is only proposed (not stored) while it is applied, so the state write comes
    // after the objects: a kill in between leaves the stored generation in charge.
    const call = builder.apply(push).catch((error: grpc.ServiceError) => error);
    await cluster.until(async () => (await pushed()) > 0, 'the push to start', 30_000);
    first.kill('SIGKILL');
    await first.exited;
    expect(await call).toMatchObject({ code: grpc.status.UNAVAILABLE });
    builder.close();

    await reconciler(port!);
    await cluster.until(
      async () => (await pushed()) === 0,
      'the restarted reconciler to bring back the stored generation',
      60_000,
    );
    // The builder's retry of the cut call.
    const retry = new Builder(`127.0.0.1:${port}`, await testCertificates());
    expect(await retry.apply(push)).toMatchObject({ changed: true });
    // Applied when answered, although the informers' caches may still be behind the
    // writes that brought the stored generation back (ClusterObjects reads past them).
    expect(await pushed()).toBe(60);
    expect(await retry.status(flake)).toMatchObject({ generation: push.generation, lastError: '' });
    retry.close();
  });

  it('serves the gRPC health-checking protocol and stops cleanly on SIGTERM', async () => {
    const [port] = await freeLoopbackPorts(1);
    const process = await reconciler(port!);
    const { HealthClient } = await healthClient();
    // Health is open to any TLS client that trusts the platform CA, certificate or not.
    const client = new HealthClient(
      `127.0.0.1:${port}`,
      grpc.credentials.createSsl(await readFile((await testCertificates()).ca.certPath)),
    );
    const answer = await new Promise<{ status: string }>((resolve, reject) =>
      client.check(
        { service: 'seed.v1.Reconciler' },
        (error: grpc.ServiceError | null, reply: { status: string }) =>
          error ? reject(error) : resolve(reply),
      ),
    );
    expect(answer.status).toBe('SERVING');
    client.close();
    process.kill('SIGTERM');
    expect(await process.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses to start on bad configuration', async () => {
    const process = startServiceProcess(MAIN, {
      SEED_RECONCILER_WORKERS: 'many',
      SEED_RECONCILER_GRPC_PORT: '-1',
    });
    expect((await process.exited).code).toBe(1);
    expect(process.stderr()).toContain('SEED_RECONCILER_WORKERS="many"');
    expect(process.stderr()).toContain('SEED_RECONCILER_GRPC_PORT="-1"');
    expect(process.stderr()).toContain('SEED_TLS_DIR');
  });
});

/** A client of grpc.health.v1.Health, loaded from the proto that grpc-health-check ships. */
async function healthClient() {
  const { loadSync } = await import('@grpc/proto-loader');
  const protoPath = require.resolve('grpc-health-check/proto/health/v1/health.proto');
  const definition = grpc.loadPackageDefinition(
    loadSync(protoPath, { enums: String }),
  ) as unknown as {
    grpc: {
      health: {
        v1: {
          Health: new (
            address: string,
            credentials: grpc.ChannelCredentials,
          ) => grpc.Client & {
            check(
              request: { service: string },
              callback: (error: grpc.ServiceError | null, reply: { status: string }) => void,
            ): void;
          };
        };
      };
    };
  };
  return { HealthClient: definition.grpc.health.v1.Health };
}
