import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { BuildsQueueProducer } from '@seed/builds-queue';
import {
  JsonErrorFilter,
  PinoNestLogger,
  ProbesModule,
  ShutdownHook,
  createLogger,
  type Logger,
} from '@seed/service-kit';
import { redactFlakeRef } from '@seed/contracts';
import { readBranchHead } from './branch-head';
import { BranchPoller, type PolledFlake } from './branch-poller';
import type { WebhookConfig } from './config';
import { registerDeliveryRoutes } from './delivery-routes';
import { WebhookMetrics } from './metrics';
import { WebhookService } from './webhook.service';

@Module({})
class WebhookModule {
  static register(
    builds: BuildsQueueProducer,
    poller: BranchPoller,
    metrics: WebhookMetrics,
  ): DynamicModule {
    return {
      module: WebhookModule,
      imports: [
        ProbesModule.register({
          registry: metrics.registry,
          readiness: { redis: () => builds.ping() },
        }),
      ],
      providers: [
        {
          provide: ShutdownHook,
          useValue: new ShutdownHook(async () => {
            await poller.stop();
            await builds.close();
          }),
        },
      ],
    };
  }
}

/** Builds the webhook's HTTP application; `listen` is left to the caller. */
export async function createWebhookApp(
  config: WebhookConfig,
  logger: Logger = createLogger('webhook', config.logLevel),
): Promise<NestFastifyApplication> {
  const builds = new BuildsQueueProducer({
    redis: config.redis,
    commandTimeoutMs: config.redis.commandTimeoutMs,
    dedupeTtlSeconds: config.dedupeTtlSeconds,
    maxQueuedBuilds: (flake) => config.registry.maxQueuedBuilds(flake),
    onConnectionError: (error) => logger.debug({ err: error }, 'redis connection error'),
  });
  // Start even when Redis is away (deliveries get 503 and /readyz says why) but give it
  // a moment first, so the first deliveries after a normal start are not refused.
  if (!(await builds.connected(5_000)))
    logger.warn(
      { url: config.redis.url, user: config.redis.username },
      'Redis is not reachable yet (or refuses the user and password)',
    );

  const adapter = new FastifyAdapter({
    bodyLimit: config.http.bodyLimitBytes,
    logger: false,
    skipMiddie: true,
  });
  const metrics = new WebhookMetrics(builds);
  const poller = branchPoller(config, builds, metrics, logger);
  const app = await NestFactory.create<NestFastifyApplication>(
    WebhookModule.register(builds, poller, metrics),
    adapter,
    { bodyParser: false, logger: new PinoNestLogger(logger) },
  );
  const fastify = app.getHttpAdapter().getInstance();
  // Signatures are over the exact bytes sent: keep every body raw and parse it ourselves.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  app.useGlobalFilters(new JsonErrorFilter(logger));
  registerDeliveryRoutes(
    fastify,
    new WebhookService(config.registry, builds, metrics, logger),
    metrics,
    config.http,
  );
  poller.start();
  return app;
}

/** Polls every registered flake it can, saying at start-up which it cannot and why. */
function branchPoller(
  config: WebhookConfig,
  builds: BuildsQueueProducer,
  metrics: WebhookMetrics,
  logger: Logger,
): BranchPoller {
  const polled: PolledFlake[] = [];
  for (const [flake, plan] of config.registry.pollPlans(config.poll.defaultIntervalSeconds)) {
    if ('polled' in plan) polled.push(plan.polled);
    else logger.info({ flake: redactFlakeRef(flake), reason: plan.skipped }, 'flake not polled');
  }
  return new BranchPoller(
    polled,
    (flake) => readBranchHead(flake.remote, flake.branch, config.poll.timeoutMs),
    builds,
    metrics,
    logger.child({ component: 'poller' }),
  );
}
