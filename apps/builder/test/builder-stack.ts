import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { REDIS_USERS } from '@seed/builds-queue';
import { startRedis, type LocalNixDaemon, type LocalRedis } from '@seed/testing';
import { createBuilderApp } from '../src/builder.app';
import { loadBuilderConfig, type BuilderConfig } from '../src/config';
import { FakeReconciler } from './fake-reconciler';
import { Pushes, builderCredentialEnv, builderNix } from './harness';

/** A builder on loopback and what it talks to; `stop` stops it all. */
export interface BuilderStack {
  redis: LocalRedis;
  daemon: LocalNixDaemon;
  reconciler: FakeReconciler;
  config: BuilderConfig;
  app: NestFastifyApplication;
  url: string;
  pushes: Pushes;
  stop(): Promise<void>;
}

/**
 * The builder app as deployed, against a real Redis, a nix-daemon of its own (sandboxed,
 * `sandboxPaths` the host folders builds may also reach) and the stand-in reconciler;
 * `env` adds to or overrides its variables.
 */
export async function startBuilderStack(
  env: Record<string, string> = {},
  sandboxPaths: string[] = [],
): Promise<BuilderStack> {
  const started: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const undo of started.splice(0).reverse()) await undo();
  };
  try {
    const redis = await startRedis();
    started.push(() => redis.dispose());
    const reconciler = await FakeReconciler.start();
    started.push(() => reconciler.stop());
    const { daemon, env: nixEnv } = await builderNix(sandboxPaths);
    started.push(() => daemon.dispose());
    const config = loadBuilderConfig({
      ...redis.serviceEnv(REDIS_USERS.builder),
      ...nixEnv,
      ...(await builderCredentialEnv()),
      SEED_RECONCILER_ADDRESS: reconciler.address,
      SEED_LOG_LEVEL: 'silent',
      ...env,
    });
    const pushes = new Pushes(redis);
    started.push(() => pushes.close());
    const app = await createBuilderApp(config);
    started.push(() => app.close());
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    return { redis, daemon, reconciler, config, app, url, pushes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
