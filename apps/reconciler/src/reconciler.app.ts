import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { RECONCILER_CALLERS, reconcilerService } from '@seed/contracts';
import { loadKubeConfig } from '@seed/kube-config';
import { SeedFlakeClient } from '@seed/seed-flakes';
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
import { Controller } from './controller/controller';
import { LEADER_POD_LABEL, LeaderElector } from './controller/leader-election';
import { ExponentialRateLimiter } from './controller/rate-limiter';
import { EventRecorder } from './event-recorder';
import { FlakeReconciler } from './flake.reconciler';
import { GenerationError, GenerationsService } from './generations.service';
import { generationsHandlers } from './grpc/generations.grpc';
import { ReconcilerMetrics } from './metrics';
import { FlakeStateRepository } from './repositories/flake-state.repository';
import { KubeRepository } from './repositories/kube.repository';
import { SeedFlakeController } from './seed-flake-status';
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
 * The reconciler: a controller of flakes fed by ApplyGeneration, informers (drift, the
 * state and namespaces included) and a periodic resync, leading by a Lease when several
 * replicas run; a gRPC server for the builders on every replica; HTTP probes and metrics.
 */
export async function createReconcilerApp(
  config: ReconcilerConfig,
  logger: Logger = createLogger('reconciler', config.logLevel),
  // controller-runtime's answer too: a replica that lost its lease may have been cut off
  // mid-reconcile, so it exits and starts afresh as a follower.
  onLostLeadership: () => void = () => process.exit(1),
): Promise<ReconcilerApp> {
  const kubeConfig = loadKubeConfig(config.kubeconfig);
  const kube = new KubeRepository(kubeConfig);
  const metrics: ReconcilerMetrics = new ReconcilerMetrics(() => controller.depth);
  const states = new FlakeStateRepository(kube, logger);
  const cluster = new ClusterObjects(kube, logger);
  const events = new EventRecorder(kube, logger);
  const reconciler = new FlakeReconciler(kube, states, cluster, events, metrics, logger, {
    shootPoolPort: config.shootPoolPort,
    network: config.network,
    resyncMs: config.resyncMs,
  });
  const controller = new Controller(
    reconciler,
    // Resume every flake this cluster holds: a restart must converge without a new push.
    () => states.namespaces(),
    { workers: config.workers, limiter: new ExponentialRateLimiter(200, 60_000) },
    metrics,
    logger,
  );
  // Both replicas watch, so a follower answers from fresh caches and a new leader has
  // them warm; only the leader's controller acts on the events.
  cluster.start((namespace) => controller.enqueue(namespace));
  states.start((namespace) => controller.enqueue(namespace));
  const generations = new GenerationsService(states, controller, kube, events, metrics, logger);
  const seedFlakes =
    config.seedFlakeStatusMs > 0
      ? new SeedFlakeController(
          kubeConfig,
          new SeedFlakeClient(kubeConfig, 'seed-reconciler'),
          {
            flakeStatus: (flakeUri) =>
              generations.status(flakeUri).catch((error: unknown) => {
                if (error instanceof GenerationError && error.kind === 'not-found')
                  return undefined;
                throw error;
              }),
            removeFlake: (flakeUri, by) => generations.remove(flakeUri, by),
          },
          { intervalMs: config.seedFlakeStatusMs, removalGraceMs: config.removalGraceMs },
          logger.child({ component: 'seedflakes' }),
        )
      : undefined;
  seedFlakes?.start();
  const ownPod = config.lease?.podName;
  const labelOwnPod = async (leading: boolean) => {
    if (!config.lease || ownPod === undefined) return;
    try {
      await kube.labelPod(
        config.lease.namespace,
        ownPod,
        LEADER_POD_LABEL,
        leading ? 'true' : null,
      );
    } catch (error) {
      logger.warn({ err: error, pod: ownPod, leading }, 'could not label this pod for the Service');
    }
  };
  const leading = () => {
    void labelOwnPod(true);
    metrics.leader.set(1);
    logger.info('leading: reconciling every flake');
    controller.startLeading();
    seedFlakes?.startLeading();
  };
  const elector = config.lease
    ? new LeaderElector(
        kube.lease(config.lease.namespace, config.lease.name),
        {
          identity: `${hostname()}_${randomUUID().slice(0, 8)}`,
          leaseMs: config.lease.durationMs,
          // client-go's proportions: renew within 2/3 of the lease, try every ~1/7.
          renewDeadlineMs: (config.lease.durationMs * 2) / 3,
          retryMs: config.lease.durationMs / 7.5,
        },
        {
          onStartedLeading: leading,
          onStoppedLeading: () => {
            metrics.leader.set(0);
            logger.error('leadership lost; exiting');
            onLostLeadership();
          },
          onError: (error) => logger.warn({ err: error }, 'could not read or renew the lease'),
        },
      )
    : undefined;
  if (elector) {
    // A replica restarted in the pod that led keeps its label until it leads again.
    await labelOwnPod(false);
    elector.start();
  } else leading();

  const grpc = await startGrpcServer(
    config.grpc.host,
    config.grpc.port,
    [
      {
        name: 'seed.v1.Reconciler',
        definition: reconcilerService(),
        handlers: generationsHandlers(generations),
        callers: RECONCILER_CALLERS,
      },
    ],
    { kind: 'mtls', tls: config.grpc.tls.files, reloadMs: config.grpc.tls.reloadMs },
  );
  const http = await NestFactory.create<NestFastifyApplication>(
    ReconcilerModule.register({
      metrics,
      kube,
      stop: async () => {
        // Calls in flight (a builder waiting on its generation) may finish first.
        await grpc.stop(25_000);
        await controller.shutdown();
        // After the last reconcile, so a follower takes over at once and nothing overlaps.
        await elector?.stop();
        await labelOwnPod(false);
        await Promise.all([cluster.stop(), states.stop(), seedFlakes?.stop()]);
        await events.flush();
      },
    }),
    new FastifyAdapter({ logger: false }),
    { logger: new PinoNestLogger(logger) },
  );
  http.useGlobalFilters(new JsonErrorFilter(logger));
  return { http, grpc };
}
