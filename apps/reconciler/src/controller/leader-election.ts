/**
 * The label the leading replica puts on its own pod. The reconciler's Service selects it,
 * so calls reach the leader, which writes a push's seed-state once; a follower would
 * store the generation for the leader and so write it twice.
 */
export const LEADER_POD_LABEL = 'seed.loom.farm/leader';

/** What a `coordination.k8s.io` Lease says about who leads. */
export interface LeaseRecord {
  /** Empty when released. */
  holder: string;
  leaseDurationSeconds: number;
  acquireTime: Date;
  renewTime: Date;
  transitions: number;
}

/** One Lease; writes fail (`false`) when someone else wrote it since `version` was read. */
export interface LeaseStore {
  get(): Promise<{ record: LeaseRecord; version: string } | undefined>;
  create(record: LeaseRecord): Promise<boolean>;
  update(record: LeaseRecord, version: string): Promise<boolean>;
}

export interface LeaderElectionOptions {
  /** Who this replica is (the pod's name and a random suffix). */
  identity: string;
  /** How long a lease lasts unless renewed; another replica takes over after it. */
  leaseMs: number;
  /** A leader that could not renew for this long stops leading (before the lease ends). */
  renewDeadlineMs: number;
  /** How often to try to acquire or renew. */
  retryMs: number;
}

/**
 * client-go's leader election, kept small: try to acquire or renew the Lease every
 * `retryMs`. A lease held by another replica counts as expired only once this replica
 * has seen it unchanged for `leaseMs` by its own clock (never by comparing clocks across
 * machines); every write is guarded by the resourceVersion read, so two replicas never
 * both win. A leader that cannot renew within `renewDeadlineMs` stops leading, which is
 * before any other replica may take over; stopping releases the lease so the next one
 * takes over at once.
 */
export class LeaderElector {
  private observed: { key: string; at: number } | undefined;
  private leading = false;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private attempt: Promise<void> = Promise.resolve();

  constructor(
    private readonly lease: LeaseStore,
    private readonly options: LeaderElectionOptions,
    private readonly callbacks: {
      onStartedLeading: () => void;
      onStoppedLeading: () => void;
      onError: (error: unknown) => void;
    },
    private readonly now: () => number = Date.now,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.attempt = this.tryAcquireOrRenew().then(
        (held) => this.settle(held),
        (error: unknown) => {
          this.callbacks.onError(error);
          this.settle(false);
        },
      );
      void this.attempt.then(() => {
        if (!this.stopped) this.timer = setTimeout(loop, this.options.retryMs);
      });
    };
    loop();
  }

  /** Stops trying; a leader releases the lease so another replica need not wait it out. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.attempt;
    if (!this.leading) return;
    this.leading = false;
    const current = await this.lease.get().catch(() => undefined);
    if (current?.record.holder === this.options.identity) {
      const now = new Date(this.now());
      await this.lease
        .update(
          { ...current.record, holder: '', leaseDurationSeconds: 1, renewTime: now },
          current.version,
        )
        .catch((error: unknown) => this.callbacks.onError(error));
    }
  }

  private settle(held: boolean): void {
    if (held) {
      this.lastRenew = this.now();
      if (!this.leading && !this.stopped) {
        this.leading = true;
        this.callbacks.onStartedLeading();
      }
    } else if (this.leading && this.now() - this.lastRenew > this.options.renewDeadlineMs) {
      this.leading = false;
      this.callbacks.onStoppedLeading();
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date(this.now());
    const mine = {
      holder: this.options.identity,
      leaseDurationSeconds: Math.ceil(this.options.leaseMs / 1000),
      acquireTime: now,
      renewTime: now,
      transitions: 0,
    };
    const current = await this.lease.get();
    if (!current) return this.lease.create(mine);
    const { record, version } = current;
    const key = `${record.holder}@${record.renewTime.toISOString()}`;
    if (this.observed?.key !== key) this.observed = { key, at: this.now() };
    const held = record.holder === this.options.identity;
    const expired =
      !record.holder || this.now() >= this.observed.at + record.leaseDurationSeconds * 1000;
    if (!held && !expired) return false;
    return this.lease.update(
      held
        ? { ...record, ...mine, acquireTime: record.acquireTime, transitions: record.transitions }
        : { ...mine, transitions: record.transitions + 1 },
      version,
    );
  }
}
