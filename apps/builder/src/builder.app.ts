import 'reflect-metadata';
import {
  Module,
  type BeforeApplicationShutdown,
  type DynamicModule,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { BuildsQueueConsumer } from '@seed/builds-queue';
import { BUILDS_QUEUE } from '@seed/contracts';
import { NixClient } from '@seed/nix-eval';
import {
  JsonErrorFilter,
  PinoNestLogger,
  ProbesModule,
  StoreGcSchedule,
  TokenFile,
  createLogger,
  type Logger,
} from '@seed/service-kit';
import type { Worker } from 'bullmq';
import {
  BINARY_CACHE,
  BinaryCacheController,
  type ServedBinaryCache,
} from './binary-cache.controller';
import { BuildProcessor, startBuildWorker } from './build.processor';
import { BuildService } from './build.service';
import { BuildsController } from './builds.controller';
import type { BuilderConfig } from './config';
import { ForgeStatuses } from './forge-statuses';
import { BuilderMetrics, storeFolder } from './metrics';
import { FileBinaryCache } from './repositories/binary-cache.repository';
import { GitHistory } from './repositories/git-history.repository';
import { ReconcilerGrpcClient } from './repositories/reconciler.client';
import { GenerationRoots } from './generation-roots';
import { StoreKeeper } from './store-keeper';

/**
 * Stops the worker taking jobs and lets running builds finish within the grace period;
 * past it, their nix processes are killed and the jobs are left for another worker. It
 * runs before the HTTP server closes, so build records stay readable (and `/readyz`
 * says `draining`) while builds finish; the connections close after the server.
 */
class WorkerDrain implements BeforeApplicationShutdown, OnApplicationShutdown {
  #draining = false;

  constructor(
    private readonly worker: Worker,
    private readonly abortBuilds: AbortController,
    private readonly graceMs: number,
    private readonly close: () => Promise<void>,
    private readonly logger: Logger,
  ) {}

  /** A readiness check: ready until the drain begins. */
  readonly accepting = (): Promise<true | string> =>
    Promise.resolve(this.#draining ? 'draining: finishing running builds' : true);

  async beforeApplicationShutdown(): Promise<void> {
    this.#draining = true;
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.graceMs);
    });
    const closing = this.worker.close();
    const drained = await Promise.race([closing.then(() => 'drained' as const), graceOver]);
    clearTimeout(timer);
    if (drained === 'timeout') {
      this.logger.warn(
        { graceMs: this.graceMs },
        'builds still running after the grace period: handing them back',
      );
      // Every step of a build honours the abort (nix is killed, a reconciler call is
      // cancelled), so the close under way ends as soon as the builds return.
      this.abortBuilds.abort(new Error('worker shutting down'));
      await closing;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}

@Module({})
class BuilderModule {
  static register(parts: {
    metrics: BuilderMetrics;
    records: BuildsQueueConsumer;
    nix: NixClient;
    served: ServedBinaryCache;
    apiToken: TokenFile;
    drain: WorkerDrain;
  }): DynamicModule {
    return {
      module: BuilderModule,
      imports: [
        ProbesModule.register({
          registry: parts.metrics.registry,
          readiness: {
            worker: parts.drain.accepting,
            redis: () => parts.records.ping(),
            // The store answering (the nix-daemon, when there is one) shows nix runs too.
            nix: async () => {
              await parts.nix.pingStore();
              return true;
            },
            ...(parts.served.cache ? { binaryCache: parts.served.cache.writable } : {}),
          },
        }),
      ],
      controllers: [BuildsController, BinaryCacheController],
      providers: [
        { provide: BINARY_CACHE, useValue: parts.served },
        { provide: BuildsQueueConsumer, useValue: parts.records },
        { provide: TokenFile, useValue: parts.apiToken },
        { provide: WorkerDrain, useValue: parts.drain },
      ],
    };
  }
}

/** The builder: a BullMQ worker on the builds queue plus its HTTP face; `listen` is the caller's. */
export async function createBuilderApp(
  config: BuilderConfig,
  logger: Logger = createLogger('builder', config.logLevel),
): Promise<NestFastifyApplication> {
  const onRedisError = (error: Error) => logger.debug({ err: error }, 'redis connection error');
  const records = new BuildsQueueConsumer(config.redis, onRedisError);
  const nix = new NixClient({
    nixBinary: config.nix.binary,
    confFile: config.nix.confFile,
    store: config.nix.store,
    evaluateTimeoutMs: config.nix.evaluateTimeoutMs,
    resolveTimeoutMs: config.nix.evaluateTimeoutMs,
    buildTimeoutMs: config.nix.buildTimeoutMs,
    maxOutputBytes: config.nix.outputLimitBytes,
  });
  const reconciler = new ReconcilerGrpcClient(config.reconciler.address, config.reconciler);
  const served: ServedBinaryCache = config.binaryCache.enabled
    ? {
        cache: new FileBinaryCache(nix, {
          dir: config.binaryCache.dir,
          secretKeyFile: config.binaryCache.secretKeyFile,
          compression: config.binaryCache.compression,
          timeoutMs: config.binaryCache.publishTimeoutMs,
        }),
      }
    : { cache: undefined, off: config.binaryCache.reason };
  // The machine's own store (no SEED_NIX_STORE) is shared with whatever else runs there:
  // the builder roots its generations in it but never collects it.
  const ownStore =
    config.nix.store === undefined ? undefined : { nix, dir: storeFolder(config.nix.store) };
  const keeper = new StoreKeeper(
    new GenerationRoots({
      dir: config.gc.rootsDir,
      keep: config.gc.keepGenerations,
      unsealedMaxAgeMs: config.gc.unsealedMaxAgeMs,
    }),
    ownStore,
    served.cache,
    logger,
  );
  const metrics = new BuilderMetrics([
    storeFolder(config.nix.store),
    ...(served.cache ? [served.cache.dir] : []),
  ]);
  const collections = new StoreGcSchedule(
    keeper.collect,
    metrics.gc,
    { ...config.gc, folders: keeper.folders },
    logger,
  );
  const statuses = new ForgeStatuses(
    config.forgeStatuses,
    (forge, result) => metrics.forgeStatuses.inc({ forge, result }),
    logger,
  );
  const service = new BuildService(
    nix,
    served.cache,
    keeper,
    reconciler,
    new GitHistory(config.history),
    records,
    statuses,
    metrics,
    logger,
    {
      logBytes: config.buildLogBytes,
      cancelSuperseded: config.worker.cancelSuperseded,
      supersedePollMs: 500,
    },
  );
  const abortBuilds = new AbortController();
  const workerOptions = {
    concurrency: config.worker.concurrency,
    lockMs: config.worker.lockMs,
    flakeBusyDelayMs: 1_000,
  };
  const processor = new BuildProcessor(service, records, logger, workerOptions, abortBuilds.signal);
  const worker = startBuildWorker(
    BUILDS_QUEUE,
    records.workerConnection(),
    processor,
    workerOptions,
    logger,
  );
  if (keeper.folders.length > 0) collections.start();
  const drain = new WorkerDrain(
    worker,
    abortBuilds,
    config.worker.shutdownGraceMs,
    async () => {
      await collections.stop();
      await statuses.close();
      reconciler.close();
      await records.close();
    },
    logger,
  );
  const app = await NestFactory.create<NestFastifyApplication>(
    BuilderModule.register({
      metrics,
      records,
      nix,
      served,
      apiToken: config.http.apiToken,
      drain,
    }),
    new FastifyAdapter({ logger: false }),
    { logger: new PinoNestLogger(logger) },
  );
  app.useGlobalFilters(new JsonErrorFilter(logger));
  return app;
}
