import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { z } from 'zod';
import { envVar } from './env';
import { diskUsage, type DiskUsage } from './store-disk';

/** Why a collection ran: its interval came round, or a store's filesystem ran short. */
export type GcTrigger = 'schedule' | 'disk-pressure';
export const GC_TRIGGERS: readonly GcTrigger[] = ['schedule', 'disk-pressure'];

/** What one collection took from one store (a nix store, a binary cache). */
export interface GcOutcome {
  /** The store's folder: the `store` label of the disk gauges too. */
  store: string;
  deletedPaths: number;
  freedBytes: number;
}

/** When a service collects: its part of the environment, shared by every service that does. */
export function storeGcEnv() {
  const percent = { error: 'expected a percentage, 0 to 100' };
  return {
    SEED_GC_INTERVAL_MS: envVar.positiveInt(60 * 60_000),
    // Above the 10 % of the disk-nearly-full alert: collecting comes first.
    SEED_GC_MIN_FREE_PERCENT: z.coerce.number().min(0, percent).max(100, percent).default(15),
    SEED_GC_CHECK_MS: envVar.positiveInt(60_000),
  };
}

export function storeGcTiming(vars: {
  SEED_GC_INTERVAL_MS: number;
  SEED_GC_MIN_FREE_PERCENT: number;
  SEED_GC_CHECK_MS: number;
}): StoreGcTiming {
  return {
    intervalMs: vars.SEED_GC_INTERVAL_MS,
    minFreePercent: vars.SEED_GC_MIN_FREE_PERCENT,
    checkMs: vars.SEED_GC_CHECK_MS,
  };
}

export interface StoreGcScheduleOptions extends StoreGcTiming {
  /** The folders whose filesystems are watched: one under `minFreePercent` collects now. */
  folders: readonly string[];
}

export interface StoreGcTiming {
  /** A collection runs at least this often. */
  intervalMs: number;
  /** Free space (of the size) under which a collection runs at the next check. */
  minFreePercent: number;
  /** How often free space is read. */
  checkMs: number;
}

/** Whether any of these filesystems has less than `minFreePercent` of its size free. */
export function underDiskPressure(
  usages: readonly (DiskUsage | undefined)[],
  minFreePercent: number,
): boolean {
  return usages.some(
    (usage) =>
      usage !== undefined && usage.size > 0 && usage.free * 100 < usage.size * minFreePercent,
  );
}

/** The GC series of a service: runs by trigger and result, what each store lost. */
export class StoreGcMetrics {
  readonly runs: Counter<'trigger' | 'result'>;
  readonly freedBytes: Counter<'store'>;
  readonly deletedPaths: Counter<'store'>;

  constructor(registry: Registry, prefix: string, stores: readonly string[]) {
    this.runs = new Counter({
      name: `${prefix}store_gc_runs_total`,
      help: 'Garbage collections of the stores, by trigger (schedule, disk-pressure) and result (ok, failed)',
      labelNames: ['trigger', 'result'] as const,
      registers: [registry],
    });
    this.freedBytes = new Counter({
      name: `${prefix}store_gc_freed_bytes_total`,
      help: 'Bytes garbage collection freed, by store',
      labelNames: ['store'] as const,
      registers: [registry],
    });
    this.deletedPaths = new Counter({
      name: `${prefix}store_gc_deleted_paths_total`,
      help: 'Store paths garbage collection deleted, by store',
      labelNames: ['store'] as const,
      registers: [registry],
    });
    // At 0 from the start, so a rate over them is 0 rather than "no data".
    for (const trigger of GC_TRIGGERS)
      for (const result of ['ok', 'failed']) this.runs.inc({ trigger, result }, 0);
    for (const store of stores) {
      this.freedBytes.inc({ store }, 0);
      this.deletedPaths.inc({ store }, 0);
    }
  }
}

/**
 * Runs a service's garbage collection on a schedule and under disk pressure, one at a
 * time: a check every `checkMs` reads the watched filesystems and collects at once when
 * one is short of space, else when `intervalMs` has passed since the last collection. A
 * failed collection is logged and counted and tried again at the next due check; the
 * collection itself (`collect`) decides what is kept.
 */
export class StoreGcSchedule {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #last: number;

  constructor(
    private readonly collect: (trigger: GcTrigger) => Promise<GcOutcome[]>,
    private readonly metrics: StoreGcMetrics,
    private readonly options: StoreGcScheduleOptions,
    private readonly logger: Logger,
    private readonly readDisk: (folder: string) => Promise<DiskUsage | undefined> = diskUsage,
    private readonly now: () => number = Date.now,
  ) {
    // The first scheduled collection comes one interval after start: a restart loop
    // should not turn into a collection loop.
    this.#last = now();
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.check(), this.options.checkMs);
    this.#timer.unref();
  }

  /** Stops the checks and waits for a collection under way. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /**
   * One check: the trigger it collected for, or undefined when none was due (or one was
   * already running).
   */
  async check(): Promise<GcTrigger | undefined> {
    if (this.#running !== undefined) return undefined;
    const usages = await Promise.all(this.options.folders.map((folder) => this.readDisk(folder)));
    const trigger: GcTrigger | undefined = underDiskPressure(usages, this.options.minFreePercent)
      ? 'disk-pressure'
      : this.now() - this.#last >= this.options.intervalMs
        ? 'schedule'
        : undefined;
    if (trigger === undefined) return undefined;
    const run = this.run(trigger);
    this.#running = run;
    try {
      await run;
    } finally {
      this.#running = undefined;
    }
    return trigger;
  }

  private async run(trigger: GcTrigger): Promise<void> {
    const started = this.now();
    this.#last = started;
    try {
      const outcomes = await this.collect(trigger);
      for (const { store, deletedPaths, freedBytes } of outcomes) {
        this.metrics.deletedPaths.inc({ store }, deletedPaths);
        this.metrics.freedBytes.inc({ store }, freedBytes);
      }
      this.metrics.runs.inc({ trigger, result: 'ok' });
      this.logger.info({ trigger, outcomes, ms: this.now() - started }, 'store garbage collected');
    } catch (error) {
      this.metrics.runs.inc({ trigger, result: 'failed' });
      this.logger.warn({ trigger, err: error }, 'store garbage collection failed');
    }
  }
}
