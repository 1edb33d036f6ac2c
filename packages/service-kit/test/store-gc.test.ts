// When a service collects its stores: the schedule and the disk-pressure check, against
// the real filesystem of a temp folder and a clock the test moves.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import {
  StoreGcMetrics,
  StoreGcSchedule,
  createLogger,
  diskUsage,
  underDiskPressure,
  type GcTrigger,
} from '../src';

const folder = mkdtempSync(path.join(tmpdir(), 'seed-store-gc-'));
const logger = createLogger('test', 'silent');

function schedule(minFreePercent: number, now: () => number, fail = false) {
  const registry = new Registry();
  const metrics = new StoreGcMetrics(registry, 'seed_test_', [folder]);
  const runs: GcTrigger[] = [];
  const gc = new StoreGcSchedule(
    (trigger) => {
      runs.push(trigger);
      return fail
        ? Promise.reject(new Error('store busy'))
        : Promise.resolve([{ store: folder, deletedPaths: 3, freedBytes: 4096 }]);
    },
    metrics,
    { folders: [folder], intervalMs: 1_000, minFreePercent, checkMs: 60_000 },
    logger,
    diskUsage,
    now,
  );
  return { gc, runs, registry };
}

describe('StoreGcSchedule', () => {
  it('collects once per interval, and counts what it freed per store', async () => {
    let clock = 0;
    const { gc, runs, registry } = schedule(0, () => clock);
    expect(await gc.check()).toBeUndefined();
    clock = 1_000;
    expect(await gc.check()).toBe('schedule');
    expect(await gc.check()).toBeUndefined();
    expect(runs).toEqual(['schedule']);
    const text = await registry.metrics();
    expect(text).toContain('seed_test_store_gc_runs_total{trigger="schedule",result="ok"} 1');
    expect(text).toContain('seed_test_store_gc_runs_total{trigger="disk-pressure",result="ok"} 0');
    expect(text).toContain(`seed_test_store_gc_freed_bytes_total{store="${folder}"} 4096`);
    expect(text).toContain(`seed_test_store_gc_deleted_paths_total{store="${folder}"} 3`);
  });

  it('collects at every check while a filesystem is short of space, and counts failures', async () => {
    const { gc, runs, registry } = schedule(100, () => 0, true);
    expect(await gc.check()).toBe('disk-pressure');
    expect(await gc.check()).toBe('disk-pressure');
    expect(runs).toEqual(['disk-pressure', 'disk-pressure']);
    expect(await registry.metrics()).toContain(
      'seed_test_store_gc_runs_total{trigger="disk-pressure",result="failed"} 2',
    );
  });
});

describe('underDiskPressure', () => {
  it('is true when any readable filesystem has less than the share free', () => {
    const disk = (free: number) => ({ size: 100, used: 100 - free, free });
    expect(underDiskPressure([disk(20), disk(9)], 10)).toBe(true);
    expect(underDiskPressure([disk(20), disk(10)], 10)).toBe(false);
    expect(underDiskPressure([undefined], 10)).toBe(false);
  });
});
