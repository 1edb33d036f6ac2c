// The SeedFlake status as a pure function of what the reconciler knows: the cases the
// API-server test does not reach (a failed generation, a failed instance).
import { describe, expect, it } from '@jest/globals';
import type { FlakeStatus, SeedFlakeResource } from '@seed/contracts';
import { seedFlakeStatus } from '../../src/seed-flake-status';

const resource: SeedFlakeResource = {
  apiVersion: 'seed.loom.farm/v1alpha1',
  kind: 'SeedFlake',
  metadata: { name: 'app', generation: 3 },
  spec: {
    flake: 'github:acme/app',
    repository: 'acme/app',
    secretKey: 'app',
    suspend: false,
    maxQueuedBuilds: 5,
  },
};
const NOW = new Date('2026-12-03T06:00:00.123Z');
/** The status of a flake that runs generation g1 of commit aaa…, with `facts` added. */
const statusOf = (facts: { lastError: string; instances: FlakeStatus['instances'] }) =>
  seedFlakeStatus(
    {
      resource,
      namespace: 's-app',
      flake: { generation: 'g1', revision: 'a'.repeat(40), ...facts },
    },
    undefined,
    NOW,
  );
const verdicts = (status: ReturnType<typeof seedFlakeStatus>) =>
  Object.fromEntries(status.conditions!.map((c) => [c.type, `${c.status} ${c.reason}`]));

describe('seedFlakeStatus', () => {
  it('is Stalled by a failed generation, with its error as the reason', () => {
    const status = statusOf({ lastError: 'image build failed', instances: [] });
    expect(verdicts(status)).toEqual({
      Ready: 'False GenerationFailed',
      Reconciling: 'False GenerationFailed',
      Stalled: 'True GenerationFailed',
    });
    expect(status.lastError).toBe('image build failed');
    expect(status.conditions![0]!.lastTransitionTime).toBe('2026-12-03T06:00:00Z');
    expect(status.observedGeneration).toBe(3);
  });

  it('is Stalled by a failed instance, naming it and why', () => {
    const status = statusOf({
      lastError: '',
      instances: [
        { name: 'web', rollout: 'available', readyReplicas: 1 },
        {
          name: 'db',
          rollout: 'failed',
          readyReplicas: 0,
          message: 'back-off pulling the image',
        },
      ],
    });
    expect(verdicts(status).Stalled).toBe('True InstanceFailed');
    expect(status.conditions!.find((c) => c.type === 'Stalled')!.message).toBe(
      'db: back-off pulling the image',
    );
    expect(status.instances).toEqual([
      { name: 'web', state: 'Available', readyReplicas: 1 },
      { name: 'db', state: 'Failed', readyReplicas: 0, message: 'back-off pulling the image' },
    ]);
  });
});
