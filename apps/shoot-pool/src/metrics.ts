import { StoreGcMetrics, registerStoreDiskGauges } from '@seed/service-kit';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the pool reports about itself for the gauges, read at scrape time. */
export interface PoolGaugeSource {
  idle: number;
  busy: number;
  starting: number;
  queued: number;
}

/** Every pool transition and every shoot outcome, as Grafana reads them. */
/** Why a shoot or a pool operation failed: the `cause` label's values. */
export const FAILURE_CAUSES = [
  'invalid',
  'caller',
  'pool-full-queue',
  'pool-full-caller',
  'unavailable',
  'vm-failed',
  'other',
  'clone-start',
  'vmm-died-idle',
] as const;
export type FailureCause = (typeof FAILURE_CAUSES)[number];

/**
 * The steps of one shoot, in order, for the phase histogram: `receive` (HTTP: from Fastify
 * routing the request, its body read and parsed, to the service) and `answer` (the answer
 * serialized and written) are the transport's; `teardown` runs after the answer
 * (destroying the used clone; its replacement's restore is `restoreSeconds`).
 */
export const SHOOT_PHASES = [
  'receive',
  'parse',
  'caller',
  'store-view',
  'lease',
  'host-binds',
  'agent',
  'answer',
  'teardown',
] as const;
export type ShootPhase = (typeof SHOOT_PHASES)[number];

export class ShootMetrics {
  readonly registry = new Registry();

  /** started, ready, start-failed, acquired, queued, dequeued, rejected-queue, rejected-caller, released, died-idle, drained. */
  readonly transitions = new Counter({
    name: 'seed_shoot_pool_transitions_total',
    help: 'Pool slot transitions, by transition',
    labelNames: ['transition'] as const,
    registers: [this.registry],
  });

  readonly shootSeconds = new Histogram({
    name: 'seed_shoot_duration_seconds',
    help: 'A shoot end to end (acquire, binds, command, answer), by outcome',
    labelNames: ['outcome'] as const,
    buckets: [0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600],
    registers: [this.registry],
  });

  /** Where a shoot's time goes (bench/shoot prints it as a profile). */
  readonly phaseSeconds = new Histogram({
    name: 'seed_shoot_phase_seconds',
    help: 'The steps of a shoot (receive, parse, caller, store-view, lease, host-binds, agent, answer) and the teardown after its answer',
    labelNames: ['phase'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 10, 60, 600],
    registers: [this.registry],
  });

  readonly restoreSeconds = new Histogram({
    name: 'seed_shoot_restore_to_ready_seconds',
    help: 'A clone from its VMM start to warm (restored, clock set, share mounted)',
    buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });

  readonly failures = new Counter({
    name: 'seed_shoot_failures_total',
    help: 'Failed shoots and pool operations, by cause',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });

  readonly gc: StoreGcMetrics;

  /** `storeDir`: the node's store (SEED_SHOOT_STORE_DIR). */
  constructor(source: () => PoolGaugeSource, storeDir = '/nix/store') {
    // Every cause and outcome is exported from the start at 0: a rate over one that never
    // happened is 0, not "no data", and the first occurrence is an increase Prometheus
    // sees (a series born with its first event has no earlier sample to rise from).
    for (const cause of FAILURE_CAUSES) this.failures.inc({ cause }, 0);
    for (const outcome of ['ok', 'timeout', ...FAILURE_CAUSES]) this.shootSeconds.zero({ outcome });
    for (const phase of SHOOT_PHASES) this.phaseSeconds.zero({ phase });
    collectDefaultMetrics({ register: this.registry, prefix: 'seed_shoot_' });
    // The node's store, which every image's closure and every shoot's view come from.
    registerStoreDiskGauges(this.registry, 'seed_shoot_', [storeDir]);
    this.gc = new StoreGcMetrics(this.registry, 'seed_shoot_', [storeDir]);
    new Gauge({
      name: 'seed_shoot_vms',
      help: 'MicroVMs of the pool, by state (idle, busy, starting)',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const now = source();
        this.set({ state: 'idle' }, now.idle);
        this.set({ state: 'busy' }, now.busy);
        this.set({ state: 'starting' }, now.starting);
      },
    });
    new Gauge({
      name: 'seed_shoot_queue_length',
      help: 'Shoots waiting for a warm VM',
      registers: [this.registry],
      collect() {
        this.set(source().queued);
      },
    });
  }
}
