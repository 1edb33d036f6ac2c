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
import { readBranchHead, type FlakeBranch } from './branch-head';
import { BranchPoller, type PolledFlake } from './branch-poller';
import type { WebhookConfig } from './config';
import type { FlakeRegistry } from './flake-registry';
import { DeliveriesController, DeliveryGates } from './deliveries.controller';
import { WebhookMetrics } from './metrics';
import { RebuildRequests } from './rebuild-requests';
import { ServedFlakes } from './served-flakes';
import { WebhookService } from './webhook.service';

@Module({})
class WebhookModule {
  static register(parts: {
    service: WebhookService;
    builds: BuildsQueueProducer;
    served: ServedFlakes;
    poller: BranchPoller;
    rebuilds: RebuildRequests;
    metrics: WebhookMetrics;
  }): DynamicModule {
    const { builds, served, poller, rebuilds, metrics } = parts;
    return {
      module: WebhookModule,
      imports: [
        ProbesModule.register({
          registry: metrics.registry,
          readiness: { redis: () => builds.ping(), flakes: () => served.ready() },
        }),
      ],
      controllers: [DeliveriesController],
      providers: [
        { provide: WebhookService, useValue: parts.service },
        {
          provide: ShutdownHook,
          useValue: new ShutdownHook(async () => {
            await served.stop();
            await poller.stop();
            await rebuilds.stop();
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
  // The queue's cap of each flake's builds reads the registry, whose counts are metrics,
  // whose gauges read the queue: each is given the others as they will be.
  const metrics: WebhookMetrics = new WebhookMetrics({
    depth: () => builds.depth(),
    oldestWaitingSeconds: () => builds.oldestWaitingSeconds(),
  });
  const served = new ServedFlakes(config.flakes, metrics, logger);
  const builds: BuildsQueueProducer = new BuildsQueueProducer({
    redis: config.redis,
    commandTimeoutMs: config.redis.commandTimeoutMs,
    dedupeTtlSeconds: config.dedupeTtlSeconds,
    maxQueuedBuilds: (flake) => served.registry.maxQueuedBuilds(flake),
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
  const readHead = (branch: FlakeBranch) =>
    readBranchHead(branch.remote, branch.branch, config.poll.timeoutMs);
  const poller = new BranchPoller(
    [],
    readHead,
    builds,
    metrics,
    logger.child({ component: 'poller' }),
    Math.random,
    () => new Date(),
    (flake, commit) => served.queued(flake, commit),
  );
  const replan = pollPlanner(config.poll.defaultIntervalSeconds, logger);
  poller.replan(replan(served.registry));
  served.onChange((registry: FlakeRegistry) => poller.replan(replan(registry)));
  const rebuilds = new RebuildRequests(
    builds,
    readHead,
    (resource, answer) => served.answerRebuild(resource, answer),
    metrics,
    logger.child({ component: 'rebuilds' }),
  );
  served.onRebuildsAsked((asked) => rebuilds.take(asked));
  const service = new WebhookService(
    () => served.registry,
    builds,
    metrics,
    logger,
    () => new Date(),
    (flake, commit) => served.queued(flake, commit),
  );
  const app = await NestFactory.create<NestFastifyApplication>(
    WebhookModule.register({ service, builds, served, poller, rebuilds, metrics }),
    adapter,
    { bodyParser: false, logger: new PinoNestLogger(logger) },
  );
  const fastify = app.getHttpAdapter().getInstance();
  // Signatures are over the exact bytes sent: keep every body raw and parse it ourselves.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  // Before Nest registers the routes (at init): the checks made before a body is read.
  new DeliveryGates(service, metrics, config.http).install(fastify);
  app.useGlobalFilters(new JsonErrorFilter(logger));
  served.start();
  poller.start();
  return app;
}

/**
 * The flakes to poll in a registry, saying (once per flake and reason) which cannot be
 * polled and why.
 */
function pollPlanner(
  defaultIntervalSeconds: number,
  logger: Logger,
): (registry: FlakeRegistry) => PolledFlake[] {
  const said = new Map<string, string>();
  return (registry) => {
    const polled: PolledFlake[] = [];
    for (const [flake, plan] of registry.pollPlans(defaultIntervalSeconds)) {
      if ('polled' in plan) {
        polled.push(plan.polled);
        said.delete(flake);
      } else if (said.get(flake) !== plan.skipped) {
        said.set(flake, plan.skipped);
        logger.info({ flake: redactFlakeRef(flake), reason: plan.skipped }, 'flake not polled');
      }
    }
    return polled;
  };
}
