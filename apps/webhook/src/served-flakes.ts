import type { RebuildAnswer, SeedFlakeResource } from '@seed/contracts';
import { loadKubeConfig } from '@seed/kube-config';
import { SeedFlakeClient, watchSeedFlakes, type SeedFlakeWatch } from '@seed/seed-flakes';
import type { Logger } from '@seed/service-kit';
import { FlakeRegistry, registryFromSeedFlakes } from './flake-registry';
import type { WebhookMetrics } from './metrics';
import { askedRebuilds, type AskedRebuild } from './rebuild-requests';

/** Where the webhook's flakes come from: a registry document, or the cluster's SeedFlakes. */
export type FlakesSource =
  | { document: FlakeRegistry }
  | {
      seedFlakes: {
        /** A kubeconfig file; unset means in-cluster or $KUBECONFIG / ~/.kube/config. */
        kubeconfig?: string;
        /** The mounted webhook Secret: one file per `secretKey`. */
        secretsDir: string;
        /** How often the secrets are read again (the kubelet updates a mounted Secret in place). */
        resyncMs: number;
      };
    };

/**
 * The flakes the webhook serves now. From a document they are fixed at start-up; from
 * SeedFlakes they follow the cluster: every change rebuilds the registry, and the
 * listeners (the poller) hear of it. A SeedFlake the webhook cannot serve is logged once
 * per reason and counted.
 */
export class ServedFlakes {
  private current: FlakeRegistry;
  private readonly listeners: ((registry: FlakeRegistry) => void)[] = [];
  private readonly rebuildListeners: ((asked: AskedRebuild[]) => void)[] = [];
  private watch: SeedFlakeWatch | undefined;
  private statuses: SeedFlakeClient | undefined;
  private resync: NodeJS.Timeout | undefined;
  private refused = new Map<string, string>();
  private unreadableRebuilds = new Map<string, string>();

  constructor(
    private readonly source: FlakesSource,
    private readonly metrics: WebhookMetrics,
    private readonly logger: Logger,
  ) {
    // SeedFlakes: none until the watch's first list (/readyz says so meanwhile).
    this.current = 'document' in source ? source.document : new FlakeRegistry([]);
    this.count(0);
  }

  get registry(): FlakeRegistry {
    return this.current;
  }

  onChange(listener: (registry: FlakeRegistry) => void): void {
    this.listeners.push(listener);
  }

  /** Hears, at each look at the SeedFlakes, the rebuild requests not answered yet. */
  onRebuildsAsked(listener: (asked: AskedRebuild[]) => void): void {
    this.rebuildListeners.push(listener);
  }

  start(): void {
    if ('document' in this.source) return;
    const { kubeconfig, secretsDir, resyncMs } = this.source.seedFlakes;
    const log = this.logger.child({ component: 'seedflakes' });
    const config = loadKubeConfig(kubeconfig);
    this.statuses = new SeedFlakeClient(config, 'seed-webhook');
    this.watch = watchSeedFlakes(
      config,
      (resources) => this.look(resources, secretsDir, log),
      (error) => log.warn({ err: error }, 'SeedFlake watch failed; retrying'),
    );
    this.resync = setInterval(() => {
      if (this.watch?.synced()) this.look(this.watch.list(), secretsDir, log);
    }, resyncMs);
    this.resync.unref();
  }

  /**
   * Records a commit queued for a flake (a push or a poll) as its SeedFlake's
   * `lastFetchedRevision`, off the delivery's path: a failed write is logged, never the
   * delivery's failure.
   */
  queued(flake: string, commit: string): void {
    const resource = this.current.byFlake(flake)?.resource;
    if (!this.statuses || resource === undefined) return;
    this.statuses
      .patchStatus(resource, { lastFetchedRevision: commit })
      .catch((error: unknown) =>
        this.logger.warn({ err: error, seedFlake: resource }, 'lastFetchedRevision not written'),
      );
  }

  /** Writes the answer to a rebuild request into its SeedFlake's status. */
  async answerRebuild(resource: string, answer: RebuildAnswer): Promise<void> {
    // A merge patch keeps the members it does not name: those of the last answer go.
    const cleared = { commit: null, jobId: null, error: null };
    await this.statuses?.patchStatus(resource, { lastHandledRebuild: { ...cleared, ...answer } });
  }

  /** For /readyz: a webhook that has not listed the SeedFlakes yet would refuse every push. */
  ready(): Promise<true | string> {
    if ('document' in this.source || this.watch?.synced()) return Promise.resolve(true);
    return Promise.resolve('the SeedFlakes are not listed yet');
  }

  async stop(): Promise<void> {
    clearInterval(this.resync);
    await this.watch?.stop();
  }

  private look(resources: readonly SeedFlakeResource[], secretsDir: string, log: Logger): void {
    const next = registryFromSeedFlakes(resources, secretsDir);
    this.replace(next, log);
    const { asked, unreadable } = askedRebuilds(
      resources,
      (resource) => next.registry.byResource(resource),
      next.refused,
    );
    const said = this.unreadableRebuilds;
    this.unreadableRebuilds = new Map(unreadable.map(({ resource, reason }) => [resource, reason]));
    for (const [resource, reason] of this.unreadableRebuilds)
      if (said.get(resource) !== reason)
        log.warn({ seedFlake: resource, reason }, 'rebuild request cannot be read');
    for (const listener of this.rebuildListeners) listener(asked);
  }

  private replace(next: ReturnType<typeof registryFromSeedFlakes>, log: Logger): void {
    const refused = new Map(next.refused.map(({ resource, reason }) => [resource, reason]));
    for (const [resource, reason] of refused)
      if (this.refused.get(resource) !== reason)
        log.warn({ seedFlake: resource, reason }, 'SeedFlake not served');
    this.refused = refused;
    this.current = next.registry;
    this.count(refused.size);
    for (const listener of this.listeners) listener(next.registry);
  }

  private count(refused: number): void {
    const suspended = this.current.flakes.filter((flake) => flake.suspended).length;
    this.metrics.flakes.set({ state: 'served' }, this.current.flakes.length - suspended);
    this.metrics.flakes.set({ state: 'suspended' }, suspended);
    this.metrics.flakes.set({ state: 'refused' }, refused);
  }
}
