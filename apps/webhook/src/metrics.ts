import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the webhook's gauges read from the builds queue on each scrape. */
export interface QueueGaugeSource {
  depth(): Promise<Record<string, number>>;
  oldestWaitingSeconds(): Promise<number>;
}

/** What Grafana reads from the webhook. */
export class WebhookMetrics {
  readonly registry = new Registry();

  readonly deliveries = new Counter({
    name: 'seed_webhook_deliveries_total',
    help: 'Forge deliveries received, by forge, event and outcome',
    labelNames: ['forge', 'event', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly enqueueSeconds = new Histogram({
    name: 'seed_webhook_enqueue_duration_seconds',
    help: 'Time to persist the builds of one delivery in Redis',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly droppedBuilds = new Counter({
    name: 'seed_webhook_builds_dropped_total',
    help: 'Superseded builds removed from the queue unbuilt, to keep their flake under its cap of queued builds',
    registers: [this.registry],
  });

  readonly polls = new Counter({
    name: 'seed_webhook_polls_total',
    help: 'Branch-head polls, by outcome (unchanged, queued, unreachable, over-limit, unavailable)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly rebuilds = new Counter({
    name: 'seed_webhook_rebuilds_total',
    help: "Operators' rebuild requests, by outcome (queued; refused, with the reason in the SeedFlake; unavailable: taken again)",
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly flakes = new Gauge({
    name: 'seed_webhook_flakes',
    help: 'Registered flakes, by state (served, suspended, refused: a SeedFlake the webhook cannot serve)',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  constructor(queue: QueueGaugeSource) {
    collectDefaultMetrics({ register: this.registry, prefix: 'seed_webhook_' });
    new Gauge({
      name: 'seed_webhook_queue_jobs',
      help: 'Jobs in the builds queue, by state',
      labelNames: ['state'] as const,
      registers: [this.registry],
      async collect() {
        try {
          for (const [state, count] of Object.entries(await queue.depth()))
            this.set({ state }, count);
        } catch {
          this.reset(); // Redis is down: report no depth rather than a stale one
        }
      },
    });
    new Gauge({
      name: 'seed_webhook_queue_oldest_waiting_seconds',
      help: 'How long the oldest build waiting for a builder has waited (0: none waits)',
      registers: [this.registry],
      async collect() {
        try {
          this.set(await queue.oldestWaitingSeconds());
        } catch {
          this.reset();
        }
      },
    });
  }
}
