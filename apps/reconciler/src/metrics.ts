import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What Grafana reads from the reconciler. */
export class ReconcilerMetrics {
  readonly registry = new Registry();

  readonly reconcileSeconds = new Histogram({
    name: 'seed_reconciler_reconcile_duration_seconds',
    help: 'Time to reconcile one flake, by outcome',
    labelNames: ['outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly writes = new Counter({
    name: 'seed_reconciler_writes_total',
    help: 'Writes to the Kubernetes API, by kind and verb (apply, patch, delete)',
    labelNames: ['kind', 'verb'] as const,
    registers: [this.registry],
  });

  readonly generations = new Counter({
    name: 'seed_reconciler_generations_total',
    help: 'ApplyGeneration calls, by result (applied, unchanged, rejected, failed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly namespaceConflicts = new Counter({
    name: 'seed_reconciler_namespace_conflicts_total',
    help: 'ApplyGeneration calls refused because their namespace belongs to another flake',
    registers: [this.registry],
  });

  readonly instances = new Gauge({
    name: 'seed_reconciler_instances',
    help: "Instances by rollout state (available, progressing, failed, unknown), per flake namespace, as of the flake's last reconcile",
    labelNames: ['namespace', 'rollout'] as const,
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: 'seed_reconciler_leader',
    help: '1 while this replica leads (reconciles), 0 while it only answers calls',
    registers: [this.registry],
  });

  constructor(queueLength: () => number) {
    new Gauge({
      name: 'seed_reconciler_queue_depth',
      help: 'Flakes waiting in the work queue',
      registers: [this.registry],
      collect() {
        this.set(queueLength());
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'seed_reconciler_' });
    // Both outcomes exported at 0 from the start: the first error is an increase, not a new series.
    for (const outcome of ['success', 'error']) this.reconcileSeconds.zero({ outcome });
  }
}
