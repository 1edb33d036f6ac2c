import { describe, expect, it } from '@jest/globals';
import { buildListSchema, buildRecordSchema, queuedBuildRecord, type BuildJob } from '../src';

const job: BuildJob = {
  flake: 'github:acme/app',
  commit: 'a'.repeat(40),
  ref: 'refs/heads/main',
  forge: 'github',
  deliveryId: 'delivery-1',
  receivedAt: '2026-12-02T10:00:00.000Z',
};

describe('the build record', () => {
  it('of a job no worker has started is a valid queued record', () => {
    const record = queuedBuildRecord('build-1', job, new Date('2026-12-02T10:00:01.000Z'));
    expect(buildRecordSchema.parse(record)).toEqual(record);
    expect(record).toMatchObject({ state: 'queued', attempts: 0, phases: {}, log: [] });
  });

  it('reads an answer from a newer builder, dropping the fields it does not know', () => {
    const record = { ...queuedBuildRecord('build-1', job, new Date()), addedLater: true };
    expect(buildRecordSchema.parse(record)).not.toHaveProperty('addedLater');
  });

  it('refuses a state the contract does not list, naming the field', () => {
    const record = { ...queuedBuildRecord('build-1', job, new Date()), state: 'paused' };
    const result = buildRecordSchema.safeParse(record);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['state']);
  });

  it('lists builds without their logs', () => {
    const { log: _log, ...summary } = queuedBuildRecord('build-1', job, new Date());
    expect(buildListSchema.parse({ builds: [summary] }).builds).toEqual([summary]);
  });
});
