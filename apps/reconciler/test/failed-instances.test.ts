import { describe, expect, it } from '@jest/globals';
import { FailedInstances } from '../src/failed-instances';
import type { InstanceRollout } from '../src/instance-rollout';

const failed = (reason: string): InstanceRollout => ({
  rollout: 'failed',
  reason,
  message: `${reason} happened`,
  readyReplicas: 0,
});
const progressing: InstanceRollout = {
  rollout: 'progressing',
  reason: 'NotReady',
  message: '',
  readyReplicas: 0,
};
const available: InstanceRollout = {
  rollout: 'available',
  reason: '',
  message: '',
  readyReplicas: 1,
};

describe('FailedInstances', () => {
  it('tells a failure once, again for a new reason or after the instance was available', () => {
    const memo = new FailedInstances();
    const told = (rollouts: Record<string, InstanceRollout>) =>
      memo.turnedFailed('ns', new Map(Object.entries(rollouts))).map((t) => t.instance);
    expect(told({ web: failed('CrashLoopBackOff'), db: progressing })).toEqual(['web']);
    expect(told({ web: failed('CrashLoopBackOff'), db: progressing })).toEqual([]);
    // A crash loop runs for a while between back-offs: not a new failure.
    expect(told({ web: progressing, db: progressing })).toEqual([]);
    expect(told({ web: failed('CrashLoopBackOff'), db: failed('Unschedulable') })).toEqual(['db']);
    expect(told({ web: failed('ImagePullBackOff'), db: failed('Unschedulable') })).toEqual(['web']);
    expect(told({ web: available, db: failed('Unschedulable') })).toEqual([]);
    expect(told({ web: failed('ImagePullBackOff'), db: failed('Unschedulable') })).toEqual(['web']);
    // An instance that left the flake is forgotten; so is the other namespace's.
    expect(told({ web: failed('ImagePullBackOff') })).toEqual([]);
    expect(told({ web: failed('ImagePullBackOff'), db: failed('Unschedulable') })).toEqual(['db']);
    expect(memo.turnedFailed('other', new Map([['web', failed('ImagePullBackOff')]]))).toHaveLength(
      1,
    );
  });
});
