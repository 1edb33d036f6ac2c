import 'reflect-metadata';
import path from 'node:path';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { shootService } from '@seed/contracts';
import {
  JsonErrorFilter,
  ShutdownHook,
  PinoNestLogger,
  ProbesModule,
  TokenFile,
  createLogger,
  startGrpcServer,
  type Logger,
  type RunningGrpcServer,
} from '@seed/service-kit';
import type { CallerResolver } from './caller/caller';
import { KubeCallerResolver } from './caller/caller.repository';
import type { ShootPoolConfig } from './config';
import { shootHandlers } from './grpc/shoot.grpc';
import { ShootMetrics } from './metrics';
import { nodeStoreGc } from './store/node-store-gc';
import { findGuestImage } from './pool/guest-image';
import { WarmPool } from './pool/pool';
import { registerShootRoute } from './shoot.route';
import { ShootService } from './shoot.service';
import { StatusController } from './status.controller';
import { ClosureViews } from './store/closure-views';
import { startTpmAgent } from './tpm/tpm-agent';
import type { Hypervisor } from './vm/hypervisor';
import { selectHypervisor } from './vm/select-hypervisor';

export interface ShootPoolApp {
  http: NestFastifyApplication;
  grpc: RunningGrpcServer;
  pool: WarmPool;
  /** The daemon's metrics (bench/shoot reads the phase histogram in process). */
  metrics: ShootMetrics;
}

@Module({})
class ShootPoolModule {
  static register(parts: {
    metrics: ShootMetrics;
    service: ShootService;
    pool: WarmPool;
    statusToken: TokenFile;
    stop: () => Promise<void>;
  }): DynamicModule {
    return {
      module: ShootPoolModule,
      imports: [
        ProbesModule.register({
          registry: parts.metrics.registry,
          readiness: {
            pool: () => {
              const status = parts.pool.status();
              if (!status.ready) return Promise.resolve('the pool is not serving');
              return Promise.resolve(
                status.idle + status.starting > 0 ? true : 'no warm VM and none starting',
              );
            },
          },
        }),
      ],
      controllers: [StatusController],
      providers: [
        { provide: ShootService, useValue: parts.service },
        { provide: TokenFile, useValue: parts.statusToken },
        { provide: ShutdownHook, useValue: new ShutdownHook(parts.stop) },
      ],
    };
  }
}

export interface ShootPoolAppOptions {
  logger?: Logger;
  /** Overrides the configured caller source (tests). */
  callers?: CallerResolver;
}

/**
 * The shoot pool daemon: reaps what a previous daemon left, boots and snapshots the
 * template, warms the pool, then serves POST /shoot, GET /status and probes over HTTP and
 * `seed.v1.Shoot` over gRPC. `listen` on the HTTP app is left to the caller.
 */
export async function createShootPoolApp(
  config: ShootPoolConfig,
  options: ShootPoolAppOptions = {},
): Promise<ShootPoolApp> {
  const logger = options.logger ?? createLogger('shoot-pool', config.logLevel);
  const callers =
    options.callers ??
    (config.callers.kind === 'static'
      ? config.callers.resolver
      : KubeCallerResolver.fromKubeconfig(
          config.callers.storeDir,
          config.callers.nodeName,
          config.callers.kubeconfig,
        ));
  // First: instances waiting for their TPM need not wait for the pool to warm. swtpm runs
  // detached, so stopping the loop never stops a TPM.
  const tpm = config.tpm ? startTpmAgent(config.tpm, logger) : undefined;
  let image: Awaited<ReturnType<typeof findGuestImage>>;
  let hv: Hypervisor;
  try {
    image = await findGuestImage(config.guestDir);
    hv = await selectHypervisor(config.hypervisor, config.runRoot, logger);
  } catch (error) {
    await tpm?.stop();
    throw error;
  }
  const metrics: ShootMetrics = new ShootMetrics(() => pool.status(), config.storeDir);
  const pool: WarmPool = new WarmPool(
    hv,
    { ...config.pool, image },
    {
      transition: (transition) => metrics.transitions.inc({ transition }),
      failure: (cause) => metrics.failures.inc({ cause }),
      restored: (seconds) => metrics.restoreSeconds.observe(seconds),
    },
    logger,
  );
  try {
    await pool.start();
  } catch (error) {
    await pool.drain();
    await tpm?.stop();
    throw error;
  }
  // Under the run root: the pool's start reaped what a previous daemon left there.
  const views = new ClosureViews({
    root: path.join(config.runRoot, 'closures'),
    storeDir: config.storeDir,
    idleMs: config.viewIdleMs,
  });
  const evictViews = setInterval(
    () => {
      views
        .evictIdle()
        .then((evicted) => {
          if (evicted.length > 0) logger.info({ images: evicted }, 'idle closure views removed');
        })
        .catch((error: unknown) =>
          logger.warn({ err: error }, 'removing idle closure views failed'),
        );
    },
    Math.min(config.viewIdleMs, 60_000),
  );
  evictViews.unref();
  const storeGc = config.gc && nodeStoreGc(config.gc, config.storeDir, metrics.gc, logger);
  storeGc?.start();
  const service = new ShootService(pool, callers, views, config.limits, metrics, logger);
  let grpc: RunningGrpcServer;
  try {
    // Plaintext: instances reach the pool at their node's IP, which no certificate
    // names; each call proves its caller with a bearer token instead.
    grpc = await startGrpcServer(
      config.grpc.host,
      config.grpc.port,
      [
        {
          name: 'seed.v1.Shoot',
          definition: shootService(),
          handlers: shootHandlers(service, config.statusToken),
        },
      ],
      { kind: 'plaintext' },
    );
  } catch (error) {
    clearInterval(evictViews);
    await storeGc?.stop();
    await pool.drain();
    await views.clear();
    await tpm?.stop();
    throw error;
  }
  const http = await NestFactory.create<NestFastifyApplication>(
    ShootPoolModule.register({
      metrics,
      service,
      pool,
      statusToken: config.statusToken,
      stop: async () => {
        clearInterval(evictViews);
        await storeGc?.stop();
        await grpc.stop(10_000);
        await pool.drain();
        await views.clear();
        await tpm?.stop();
      },
    }),
    new FastifyAdapter({ bodyLimit: config.http.bodyLimitBytes, logger: false }),
    { logger: new PinoNestLogger(logger) },
  );
  http.useGlobalFilters(new JsonErrorFilter(logger));
  registerShootRoute(http.getHttpAdapter().getInstance(), service);
  return { http, grpc, pool, metrics };
}
