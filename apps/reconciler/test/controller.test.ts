import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@seed/service-kit';
import { Controller } from '../src/controller/controller';
import { ExponentialRateLimiter } from '../src/controller/rate-limiter';
import { TerminalError, WorkQueue } from '../src/controller/work-queue';
import { largerQuantity } from '../src/quantity';
import { isSubset } from '../src/subset';

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ExponentialRateLimiter', () => {
  it('doubles per failure of a key, caps, and forgets on success', () => {
    const limiter = new ExponentialRateLimiter(100, 500);
    expect([1, 2, 3, 4].map(() => limiter.when('a'))).toEqual([100, 200, 400, 500]);
    expect(limiter.when('b')).toBe(100);
    limiter.forget('a');
    expect(limiter.when('a')).toBe(100);
  });
});

describe('WorkQueue', () => {
  it('never processes one key twice at once, and reprocesses a key changed meanwhile', async () => {
    const running = new Set<string>();
    const seen: string[] = [];
    let overlap = false;
    const queue = new WorkQueue(
      async (key) => {
        if (running.has(key)) overlap = true;
        running.add(key);
        seen.push(key);
        await tick(20);
        running.delete(key);
        return {};
      },
      new ExponentialRateLimiter(1, 10),
      4,
      () => undefined,
    );
    queue.add('a');
    queue.add('a'); // queued once
    await tick();
    queue.add('a'); // while in process: once more afterwards
    queue.add('b');
    await tick(80);
    expect(overlap).toBe(false);
    expect(seen.sort()).toEqual(['a', 'a', 'b']);
    await queue.shutdown();
  });

  it('retries failures with backoff, stops on terminal errors, and tells waiters', async () => {
    let calls = 0;
    const errors: (number | undefined)[] = [];
    const queue = new WorkQueue(
      (key) => {
        calls += 1;
        if (key === 'flaky' && calls < 3) return Promise.reject(new Error('transient'));
        if (key === 'bad') return Promise.reject(new TerminalError('invalid spec'));
        return Promise.resolve({});
      },
      new ExponentialRateLimiter(10, 100),
      1,
      (_key, _error, retryIn) => errors.push(retryIn),
    );
    await expect(queue.addAndWait('flaky')).rejects.toThrow('transient');
    await tick(60);
    expect(calls).toBe(3);
    expect(errors).toEqual([10, 20]);
    await expect(queue.addAndWait('bad')).rejects.toBeInstanceOf(TerminalError);
    await tick(40);
    expect(calls).toBe(4); // no retry of a terminal error
    await queue.shutdown();
  });
});

describe('helpers', () => {
  it('compares storage quantities so volumes only grow', () => {
    expect(largerQuantity('512Mi', '1Gi')).toBe('1Gi');
    expect(largerQuantity('2Gi', '1Gi')).toBe('2Gi');
    expect(largerQuantity('2Gi', undefined)).toBe('2Gi');
  });

  it('sees defaults added by the API server as no difference, edits as one', () => {
    const desired = { spec: { ports: [{ port: 80, name: 'http' }] } };
    expect(
      isSubset(desired, {
        spec: { ports: [{ port: 80, name: 'http', protocol: 'TCP' }], clusterIP: '10.0.0.1' },
      }),
    ).toBe(true);
    expect(isSubset(desired, { spec: { ports: [{ port: 81, name: 'http' }] } })).toBe(false);
    expect(
      isSubset(desired, {
        spec: {
          ports: [
            { port: 80, name: 'http' },
            { port: 81, name: 'x' },
          ],
        },
      }),
    ).toBe(false);
    expect(isSubset(desired, undefined)).toBe(false);
  });
});

describe('WorkQueue delays', () => {
  it('keeps the sooner of two pending delays for a key', async () => {
    const seen: number[] = [];
    const started = Date.now();
    const queue = new WorkQueue(
      () => {
        seen.push(Date.now() - started);
        return Promise.resolve({});
      },
      new ExponentialRateLimiter(1, 10),
      1,
      () => undefined,
    );
    queue.addAfter('a', 10_000); // a periodic resync
    queue.addAfter('a', 20); // a retry after a failure must not wait for it
    await tick(100);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeLessThan(1_000);
    await queue.shutdown();
  });
});

describe('Controller', () => {
  it('reconciles only while leading, and resumes every key on becoming leader', async () => {
    const reconciled: string[] = [];
    const outcomes: string[] = [];
    const controller = new Controller(
      {
        reconcile: (key) => {
          reconciled.push(key);
          return key === 'bad' ? Promise.reject(new TerminalError('invalid')) : Promise.resolve({});
        },
      },
      () => Promise.resolve(['a', 'b']),
      { workers: 2, limiter: new ExponentialRateLimiter(1, 10) },
      {
        reconcileSeconds: {
          startTimer: () => (labels) => outcomes.push(labels.outcome),
        },
      },
      createLogger('test', 'silent'),
    );
    controller.enqueue('early'); // a follower's event: the leader handles it
    await tick(20);
    expect(reconciled).toEqual([]);
    controller.startLeading();
    await tick(20);
    expect(reconciled.sort()).toEqual(['a', 'b']);
    await expect(controller.enqueueAndWait('bad')).rejects.toBeInstanceOf(TerminalError);
    expect(outcomes.sort()).toEqual(['error', 'success', 'success']);
    await controller.shutdown();
  });
});
