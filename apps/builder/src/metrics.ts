import { StoreGcMetrics, registerStoreDiskGauges } from '@seed/service-kit';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const BUILD_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/**
 * The folder a `--store` option builds into: a chroot store's own folder (given as a
 * folder, or as the `root` of a daemon's `unix://…?root=` URL), else the machine's.
 */
export function storeFolder(store: string | undefined): string {
  if (store?.startsWith('/')) return store;
  const root = store === undefined ? null : /[?&]root=([^&]+)/.exec(store);
  return root ? decodeURIComponent(root[1]!) : '/nix/store';
}

/** What Grafana reads from the builder. */
export class BuilderMetrics {
  readonly registry = new Registry();

  readonly phaseSeconds = new Histogram({
    name: 'seed_builder_phase_duration_seconds',
    help: 'Time per build phase (evaluate, build, publish, apply)',
    labelNames: ['phase'] as const,
    buckets: BUILD_BUCKETS,
    registers: [this.registry],
  });

  readonly buildSeconds = new Histogram({
    name: 'seed_builder_build_duration_seconds',
    help: 'Time of a successful build, all phases',
    buckets: BUILD_BUCKETS,
    registers: [this.registry],
  });

  readonly forgeStatuses = new Counter({
    name: 'seed_builder_forge_statuses_total',
    help: 'Commit statuses for the forges: sent, retried (a failed try), rejected (4xx) or dropped',
    labelNames: ['forge', 'result'] as const,
    registers: [this.registry],
  });

  readonly queueWait = new Histogram({
    name: 'seed_builder_queue_wait_seconds',
    help: 'Time from the webhook accepting a push to a worker starting its build',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
    registers: [this.registry],
  });

  readonly outcomes = new Counter({
    name: 'seed_builder_builds_total',
    help: 'Finished builds by outcome (succeeded, failed, superseded, superseded-by-history)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly inFlight = new Gauge({
    name: 'seed_builder_builds_in_flight',
    help: 'Builds running in this worker',
    registers: [this.registry],
  });

  readonly gc: StoreGcMetrics;

  /** `stores`: the folder of the store the builder builds into, and its binary cache's. */
  constructor(stores: readonly string[]) {
    collectDefaultMetrics({ register: this.registry, prefix: 'seed_builder_' });
    registerStoreDiskGauges(this.registry, 'seed_builder_', stores);
    this.gc = new StoreGcMetrics(this.registry, 'seed_builder_', stores);
    // Each phase exported at 0 from the start: its first build is an increase Prometheus sees.
    for (const phase of ['evaluate', 'build', 'publish', 'apply'])
      this.phaseSeconds.zero({ phase });
  }
}
