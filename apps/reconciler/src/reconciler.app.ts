import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { RECONCILER_CALLERS, reconcilerService } from '@seed/contracts';
import {
  JsonErrorFilter,
  ShutdownHook,
  PinoNestLogger,
  ProbesModule,
  createLogger,
  startGrpcServer,
  type Logger,
  type RunningGrpcServer,
} from '@seed/service-kit';
import type { ReconcilerConfig } from './config';
import { ExponentialRateLimiter } from './controller/rate-limiter';
import { WorkQueue, type ProcessResult } from './controller/work-queue';
import { EventRecorder } from './event-recorder';
import { FlakeReconciler } from './flake.reconciler';
import { GenerationsService } from './generations.service';
import { generationsHandlers } from './grpc/generations.grpc';
import { ReconcilerMetrics } from './metrics';
import { FlakeStateRepository } from './repositories/flake-state.repository';
import { KubeRepository } from './repositories/kube.repository';
import { ClusterObjects } from './sources/cluster-objects.source';

export interface ReconcilerApp {
  http: NestFastifyApplication;
  grpc: RunningGrpcServer;
}

@Module({})
class ReconcilerModule {
  static register(parts: {
    metrics: ReconcilerMetrics;
    kube: KubeRepository;
    stop: () => Promise<void>;
  }): DynamicModule {
    return {
      module: ReconcilerModule,
      imports: [
        ProbesModule.register({
          registry: parts.metrics.registry,
          readiness: {
            apiserver: async () => ((await parts.kube.version()) ? true : 'no version'),
          },
        }),
      ],
      providers: [{ provide: ShutdownHook, useValue: new ShutdownHook(parts.stop) }],
    };
  }
}

/**
 * The reconciler: a work queue of flakes fed by ApplyGeneration, informers (drift) and a
 * periodic resync, a gRPC server for the builders, and HTTP probes and metrics.
 */
export async function createReconcilerApp(
  config: ReconcilerConfig,
  logger: Logger = createLogger('reconciler', config.logLevel),
): Promise<ReconcilerApp> {
  const kube = KubeRepository.fromKubeconfig(config.kubeconfig);
  // Keys are processed only once the app is wired, so the closure may name what follows.
  const queue: WorkQueue = new WorkQueue(
    async (namespace): Promise<ProcessResult> => {
      const stopTimer = metrics.reconcileSeconds.startTimer();
      try {
        const result = await reconciler.reconcile(namespace);
        stopTimer({ outcome: 'success' });
        return result;
      } catch (error) {
        stopTimer({ outcome: 'error' });
        throw error;
      }
    },
    new ExponentialRateLimiter(200, 60_000),
    config.workers,
    (namespace, error, retryInMs) =>
      logger.warn({ namespace, err: error, retryInMs }, 'reconcile failed'),
  );
  const metrics: ReconcilerMetrics = new ReconcilerMetrics(() => queue.length);
  const states = new FlakeStateRepository(kube);
  const cluster = new ClusterObjects(kube, logger);
  const events = new EventRecorder(kube, logger);
  const reconciler = new FlakeReconciler(kube, states, cluster, events, metrics, logger, {
    shootPoolPort: config.shootPoolPort,
    resyncMs: config.resyncMs,
  });
  cluster.start((namespace) => queue.add(namespace));
  // Resume every flake this cluster holds: a restart must converge without a new push.
  states.namespaces().then(
    (namespaces) => namespaces.forEach((namespace) => queue.add(namespace)),
    (error: unknown) =>
      logger.warn({ err: error }, 'could not list flakes to resume; the next events will'),
  );

  const generations = new GenerationsService(states, queue, kube, metrics, logger);
  const grpc = await startGrpcServer(
    config.host,
    config.grpcPort,
    [
      {
        name: 'seed.v1.Reconciler',
        definition: reconcilerService(),
        handlers: generationsHandlers(generations),
        callers: RECONCILER_CALLERS,
      },
    ],
    { kind: 'mtls', tls: config.tls.files, reloadMs: config.tls.reloadMs },
  );
  const http = await NestFactory.create<NestFastifyApplication>(
    ReconcilerModule.register({
      metrics,
      kube,
      stop: async () => {
        // Calls in flight (a builder waiting on its generation) may finish first.
        await grpc.stop(25_000);
        await cluster.stop();
        await queue.shutdown();
        await events.flush();
      },
    }),
    new FastifyAdapter({ logger: false }),
    { logger: new PinoNestLogger(logger) },
  );
  http.useGlobalFilters(new JsonErrorFilter(logger));
  return { http, grpc };
}
