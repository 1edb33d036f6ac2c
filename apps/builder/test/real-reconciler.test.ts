import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REDIS_USERS } from '@seed/builds-queue';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  createReconcilerClient,
  platformChannelCredentials,
  readTlsDirectory,
  type FlakeStatus__Output,
} from '@seed/contracts';
import {
  freeLoopbackPorts,
  startKubeApiServer,
  startRedis,
  startServiceProcess,
  type FlakeRepo,
  type KubeApiServer,
  type ServiceProcess,
  type LocalRedis,
} from '@seed/testing';
import { createBuilderApp } from '../src/builder.app';
import { loadBuilderConfig } from '../src/config';
import {
  Pushes,
  builderCredentialEnv,
  builderCredentials,
  commit,
  finished,
  flake,
} from './harness';

const RECONCILER = path.resolve(__dirname, '../../reconciler/dist/main.js');

describe('a build handed to the real reconciler', () => {
  let api: KubeApiServer;
  let redis: LocalRedis;
  let reconciler: ServiceProcess;
  let address: string;
  let app: NestFastifyApplication;
  let url: string;
  let pushes: Pushes;
  let repo: FlakeRepo;

  beforeAll(async () => {
    [api, redis] = await Promise.all([startKubeApiServer(), startRedis()]);
    const [grpcPort] = await freeLoopbackPorts(1);
    address = `127.0.0.1:${grpcPort}`;
    reconciler = startServiceProcess(RECONCILER, {
      SEED_KUBECONFIG: api.kubeconfigPath,
      SEED_TLS_DIR: (await builderCredentials()).certificates.reconciler,
      SEED_RECONCILER_GRPC_PORT: String(grpcPort),
      SEED_RECONCILER_HTTP_PORT: '0',
    });
    await reconciler.waitForLog((line) => line.msg === 'reconciler listening');
    app = await createBuilderApp(
      loadBuilderConfig({
        ...redis.serviceEnv(REDIS_USERS.builder),
        ...(await builderCredentialEnv()),
        SEED_RECONCILER_ADDRESS: address,
        SEED_LOG_LEVEL: 'silent',
      }),
    );
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    pushes = new Pushes(redis);
  }, 20 * 60_000);

  afterAll(async () => {
    await app?.close();
    await pushes?.close();
    reconciler?.kill('SIGTERM');
    await reconciler?.exited;
    await repo?.dispose();
    await Promise.all([api?.stop(), redis?.dispose()]);
  });

  it('applies the generation to the cluster', async () => {
    repo = await flake({
      web: { seed: { expose: { http: 8080 }, storage: { data: '1Gi' } } },
      worker: {},
    });
    const record = await finished(url, await pushes.push(repo, await repo.head()));
    expect(record).toMatchObject({ state: 'succeeded', changed: true });

    const operator = readTlsDirectory((await builderCredentials()).certificates.operator);
    const client = createReconcilerClient(address, platformChannelCredentials(operator, 60_000));
    const status = await new Promise<FlakeStatus__Output>((resolve, reject) =>
      client.getStatus({ flakeUri: repo.url() }, (error, reply) =>
        error ? reject(error) : resolve(reply!),
      ),
    );
    client.close();
    expect(status).toMatchObject({
      generation: record.generation,
      revision: record.commit,
      namespace: record.namespace,
      lastError: '',
    });
    expect(status.instances.map((instance) => instance.name).sort()).toEqual(['web', 'worker']);
    expect(status.instances.every((instance) => instance.rollout === 'progressing')).toBe(true);
  });

  it('goes only forward from the revision the reconciler reports (GetStatus as the builder)', async () => {
    const files = { web: { seed: { expose: { http: 8080 }, storage: { data: '1Gi' } } } };
    const parent = await commit(repo, files);
    const child = await commit(repo, { ...files, worker: {} });
    expect((await finished(url, await pushes.push(repo, child))).state).toBe('succeeded');
    const late = await finished(url, await pushes.push(repo, parent));
    expect(late.state).toBe('superseded-by-history');
    expect(late.reason).toContain(`commit ${parent} does not descend from ${child}`);
  });
});
