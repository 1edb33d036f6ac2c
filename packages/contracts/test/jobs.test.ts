import { describe, expect, it } from '@jest/globals';
import { buildJobId, buildJobSchema, flakeKey } from '../src';

const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const job = {
  flake: 'github:acme/app',
  commit: COMMIT,
  ref: 'refs/heads/main',
  forge: 'github',
  deliveryId: 'd-1',
  receivedAt: '2026-11-28T12:00:00.000Z',
};

describe('build jobs', () => {
  it('derive one job id per flake and commit, without the characters BullMQ refuses', () => {
    const id = buildJobId('github:acme/app', COMMIT);
    expect(id).toBe(`build-${flakeKey('github:acme/app')}-${COMMIT}`);
    expect(id).not.toContain(':');
    expect(buildJobId('github:acme/other', COMMIT)).not.toBe(id);
  });

  it('validate the payload and name what is wrong', () => {
    expect(buildJobSchema.parse(job)).toEqual(job);
    const bad = buildJobSchema.safeParse({ ...job, commit: 'HEAD', ref: 'refs/tags/v1', extra: 1 });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((issue) => issue.path.join('.') || issue.code);
    expect(paths).toEqual(expect.arrayContaining(['commit', 'ref']));
  });

  it('take forced and allowBackward as booleans only', () => {
    expect(buildJobSchema.parse({ ...job, forced: true, allowBackward: false })).toMatchObject({
      forced: true,
      allowBackward: false,
    });
    const bad = buildJobSchema.safeParse({ ...job, forced: 'true' });
    expect(bad.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['forced']);
  });
});
