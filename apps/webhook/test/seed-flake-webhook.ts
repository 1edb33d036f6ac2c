import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { REDIS_USERS } from '@seed/builds-queue';
import { BUILDS_QUEUE, type BuildJob } from '@seed/contracts';
import type { KubeApiServer, LocalRedis } from '@seed/testing';
import { Queue } from 'bullmq';
import { loadWebhookConfig } from '../src/config';
import { createWebhookApp } from '../src/webhook.app';

export interface SeedFlakeWebhook {
  app: NestFastifyApplication;
  url: string;
  /** The builds queue as an admin sees it. */
  queue: Queue<BuildJob>;
}

/**
 * A webhook following the API server's SeedFlakes, their secrets read from `secretsDir`
 * every second, with no polling unless `env` says otherwise.
 */
export async function startSeedFlakeWebhook(
  api: KubeApiServer,
  redis: LocalRedis,
  secretsDir: string,
  env: Record<string, string> = {},
): Promise<SeedFlakeWebhook> {
  const app = await createWebhookApp(
    loadWebhookConfig({
      SEED_KUBECONFIG: api.kubeconfigPath,
      SEED_WEBHOOK_SECRETS_DIR: secretsDir,
      SEED_WEBHOOK_SECRETS_RESYNC_SECONDS: '1',
      SEED_POLL_INTERVAL_SECONDS: '0',
      ...redis.serviceEnv(REDIS_USERS.webhook),
      SEED_LOG_LEVEL: 'silent',
      ...env,
    }),
  );
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const queue = new Queue<BuildJob>(BUILDS_QUEUE, {
    connection: { host: redis.host, port: redis.port, ...redis.admin },
  });
  return { app, url, queue };
}
