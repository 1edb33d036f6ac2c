import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ReconcilerGrpcClient, ReconcilerUnavailable } from '../src/repositories/reconciler.client';
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

  it("reads a flake's applied revision over GetStatus, as the builder's identity", async () => {
    const client = new ReconcilerGrpcClient(reconciler.address, {
      tls: await builderTls(),
      deadlineMs: 5_000,
      attempts: 2,
      backoffMs: 10,
    });
    try {
      // Never applied: NOT_FOUND is an answer, not a failure.
      expect(await client.appliedRevision('github:acme/never')).toBeUndefined();
      await client.applyGeneration(request);
      expect(await client.appliedRevision(request.flakeUri)).toBe(request.revision);
    } finally {
      client.close();
    }
  });

  it('counts a reconciler that does not answer GetStatus as unavailable, after its retries', async () => {
    const client = new ReconcilerGrpcClient('127.0.0.1:1', {
      tls: await builderTls(),
      deadlineMs: 500,
      attempts: 2,
      backoffMs: 10,
    });
    const retries: number[] = [];
    try {
      await expect(
        client.appliedRevision(request.flakeUri, undefined, (attempt) => retries.push(attempt)),
      ).rejects.toThrow(ReconcilerUnavailable);
      expect(retries).toEqual([1]);
    } finally {
      client.close();
    }
  });
});
