import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ReconcilerGrpcClient } from '../src/repositories/reconciler.client';
import { FakeReconciler } from './fake-reconciler';
import { builderTls } from './harness';

let reconciler: FakeReconciler;

beforeAll(async () => {
  reconciler = await FakeReconciler.start();
});

afterAll(async () => {
  await reconciler?.stop();
});

const request = {
  flakeUri: 'github:acme/app',
  namespace: 's-aaaaaaaaaaaa',
  revision: 'a'.repeat(40),
  generation: 'b'.repeat(12),
  instances: [],
};

describe('ReconcilerGrpcClient', () => {
  it('cancels a call in flight when its build is aborted, instead of waiting out the deadline', async () => {
    const client = new ReconcilerGrpcClient(reconciler.address, {
      tls: await builderTls(),
      // Far beyond this test's timeout: only the cancellation can end the call in time.
      deadlineMs: 120_000,
      attempts: 3,
      backoffMs: 120_000,
    });
    reconciler.hang = true;
    try {
      const controller = new AbortController();
      const applying = client.applyGeneration(request, controller.signal);
      setTimeout(() => controller.abort(new Error('worker shutting down')), 200);
      await expect(applying).rejects.toThrow('worker shutting down');
    } finally {
      reconciler.hang = false;
      client.close();
    }
  }, 10_000);
});
