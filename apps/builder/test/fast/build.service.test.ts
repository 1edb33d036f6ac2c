// BuildService over in-memory ports: the order of a build's steps, what it records, and
// which failures it retries, in milliseconds. The same service against real nix, Redis
// and a reconciler is tested in test/builder.test.ts and test/real-reconciler.test.ts.
import { describe, expect, it } from '@jest/globals';
import { buildJobId, withQuotaDefaults, type BuildJob } from '@seed/contracts';
import { NixError } from '@seed/nix-eval';
import { createLogger } from '@seed/service-kit';
import { seedMeta } from '@seed/testing';
import { BuildFailed, BuildService, type BuildContext } from '../../src/build.service';
import { BuilderMetrics } from '../../src/metrics';
import { PublishFailed } from '../../src/repositories/binary-cache.repository';
import {
  GenerationRejected,
  ReconcilerUnavailable,
} from '../../src/repositories/reconciler.client';
import { HistoryUnavailable } from '../../src/repositories/git-history.repository';
import {
  InMemoryBuildRecords,
  InMemoryHistory,
  RecordingCache,
  RecordingKeeper,
  RecordingSink,
  RecordingStatuses,
  ScriptedNix,
} from './in-memory-ports';

const FLAKE = 'github:acme/app';
const job: BuildJob = {
  flake: FLAKE,
  commit: 'c'.repeat(40),
  ref: 'refs/heads/main',
  forge: 'github',
  deliveryId: 'delivery-1',
  receivedAt: new Date().toISOString(),
};
const jobId = buildJobId(job.flake, job.commit);

function context(overrides: Partial<BuildContext> = {}): BuildContext {
  return {
    jobId,
    attempt: 1,
    finalAttempt: false,
    signal: new AbortController().signal,
    ...overrides,
  };
}

function buildService(seeds = [seedMeta('web'), seedMeta('api')]) {
  const parts = {
    nix: new ScriptedNix(seeds),
    cache: new RecordingCache(),
    keeper: new RecordingKeeper(),
    sink: new RecordingSink(),
    history: new InMemoryHistory(),
    records: new InMemoryBuildRecords(),
    statuses: new RecordingStatuses(),
  };
  parts.records.latestByFlake.set(FLAKE, jobId);
  const service = new BuildService(
    parts.nix,
    parts.cache,
    parts.keeper,
    parts.sink,
    parts.history,
    parts.records,
    parts.statuses,
    new BuilderMetrics(['/nix/store']),
    createLogger('builder', 'silent'),
    { logBytes: 64 * 1024, cancelSuperseded: true, supersedePollMs: 60_000 },
  );
  return { service, ...parts };
}

describe('BuildService (in-memory ports)', () => {
  it('evaluates, builds, publishes, then applies, recording each state', async () => {
    const { service, nix, cache, keeper, sink, records, statuses } = buildService();
    const record = await service.run(job, context());

    expect(record.state).toBe('succeeded');
    // Rooted as built, kept among the flake's generations once published.
    expect(keeper.events).toEqual([`open ${FLAKE}`, `seal ${record.generation}`]);
    expect(nix.calls.map((call) => call.split(' ')[0])).toEqual(['resolve', 'evaluate', 'build']);
    // Published before the reconciler hears of the images: every node can fetch them.
    expect(cache.published).toEqual([
      [expect.stringContaining('-web-image.tar'), expect.stringContaining('-api-image.tar')],
    ]);
    expect(sink.requests).toHaveLength(1);
    expect(sink.requests[0]).toMatchObject({
      flakeUri: FLAKE,
      revision: job.commit,
      generation: record.generation,
      instances: [{ name: 'web' }, { name: 'api' }],
    });
    expect(records.history.get(jobId)).toEqual([
      'evaluating',
      'building',
      'publishing',
      'applying',
      'succeeded',
    ]);
    expect(Object.keys(record.phases)).toEqual(['evaluate', 'build', 'publish', 'apply']);
    expect(statuses.events).toEqual(['queued', 'building', 'succeeded']);
  });

  it('supersedes a build whose flake has a newer push, without running nix', async () => {
    const { service, nix, records } = buildService();
    records.latestByFlake.set(FLAKE, 'a-newer-job');
    const record = await service.run(job, context());
    expect(record.state).toBe('superseded');
    expect(nix.calls).toEqual([]);
  });

  it('fails an evaluation error at once, with its kind and location', async () => {
    const { service, nix, sink, records, statuses } = buildService();
    nix.failWith.evaluate = new NixError('evaluation', 'undefined variable foo', {
      location: 'flake.nix:3:5',
    });
    const failure = await service.run(job, context()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(BuildFailed);
    expect((failure as BuildFailed).retryable).toBe(false);
    expect(sink.requests).toEqual([]);
    const record = records.records.get(jobId)!;
    expect(record.state).toBe('failed');
    expect(record.error).toMatchObject({ kind: 'evaluation', location: 'flake.nix:3:5' });
    expect(statuses.events.at(-1)).toBe('failed');
  });

  it.each([
    [
      'the binary cache',
      (p: ReturnType<typeof buildService>) => (p.cache.failWith = new PublishFailed('disk full')),
      'publish',
    ],
    [
      'the reconciler',
      (p: ReturnType<typeof buildService>) =>
        (p.sink.failWith = new ReconcilerUnavailable('no answer')),
      'reconciler-unavailable',
    ],
  ])(
    'requeues the build when %s is away, and fails it on the last attempt',
    async (_what, breakIt, kind) => {
      const parts = buildService();
      breakIt(parts);
      const early = await parts.service.run(job, context()).catch((error: unknown) => error);
      expect((early as BuildFailed).retryable).toBe(true);
      // A generation that was never published is no generation to keep; one that was
      // stays kept while the reconciler is away.
      expect(parts.keeper.events.at(-1)).toEqual(
        kind === 'publish' ? 'discard' : expect.stringMatching(/^seal /),
      );
      expect(parts.records.records.get(jobId)).toMatchObject({ state: 'queued', error: { kind } });

      const last = await parts.service
        .run(job, context({ attempt: 3, finalAttempt: true }))
        .catch((error: unknown) => error);
      expect(last).toBeInstanceOf(BuildFailed);
      expect(parts.records.records.get(jobId)).toMatchObject({ state: 'failed', attempts: 3 });
    },
  );

  it('fails a generation the reconciler refuses, without retrying', async () => {
    const { service, sink, records } = buildService();
    sink.failWith = new GenerationRejected('namespace s-x belongs to another flake');
    const failure = await service.run(job, context()).catch((error: unknown) => error);
    expect((failure as BuildFailed).retryable).toBe(false);
    expect(records.records.get(jobId)?.state).toBe('failed');
  });

  it('refuses a flake over its caps before anything is built, naming the cap', async () => {
    const { service, nix } = buildService([seedMeta('a'), seedMeta('b'), seedMeta('c')]);
    const tight = withQuotaDefaults({ pods: 2 });
    const failure = await service
      .run({ ...job, quota: tight }, context())
      .catch((error: unknown) => error);
    expect((failure as BuildFailed).retryable).toBe(false);
    expect((failure as Error).message).toMatch(/pods/);
    expect(nix.calls.some((call) => call.startsWith('build'))).toBe(false);
  });
});

describe('only forward, unless asked (in-memory ports)', () => {
  const [a, b, c] = ['a', 'b', 'c'].map((digit) => digit.repeat(40)) as [string, string, string];
  const at = (commit: string): BuildJob => ({ ...job, commit });
  // A ← B, the branch at B; C on A, beside B.
  function withHistory() {
    const parts = buildService();
    parts.history.parents.set(b, a);
    parts.history.parents.set(c, a);
    parts.history.head = b;
    return parts;
  }
  const runAt = (parts: ReturnType<typeof buildService>, commit: string, extra = {}) => {
    const id = buildJobId(FLAKE, commit);
    parts.records.latestByFlake.set(FLAKE, id);
    return parts.service.run({ ...at(commit), ...extra }, context({ jobId: id }));
  };

  it('deploys a descendant of the applied revision, and the first revision of a flake', async () => {
    const parts = withHistory();
    expect((await runAt(parts, a)).state).toBe('succeeded');
    expect(parts.history.asked).toEqual([]); // nothing applied yet: nothing to ask
    const record = await runAt(parts, b);
    expect(record.state).toBe('succeeded');
    expect(parts.history.asked).toEqual([`${a}..${b}`]);
    expect(record.log.join('\n')).toContain(`descends from the applied revision ${a}`);
  });

  it('ends an older commit superseded-by-history, naming both, without running nix', async () => {
    const parts = withHistory();
    parts.sink.runs = b;
    const record = await runAt(parts, a);
    expect(record.state).toBe('superseded-by-history');
    expect(record.reason).toContain(`commit ${a} does not descend from ${b}`);
    expect(record.error).toBeUndefined();
    expect(parts.nix.calls).toEqual([]);
    expect(parts.sink.requests).toEqual([]);
    expect(parts.statuses.events).toEqual(['queued', 'superseded']);
  });

  it('follows a branch rewritten so that it no longer holds the applied revision', async () => {
    const parts = withHistory();
    parts.sink.runs = b;
    parts.history.head = c; // a forced push whose delivery did not say so (GitLab, a poll)
    const record = await runAt(parts, c);
    expect(record.state).toBe('succeeded');
    expect(record.log.join('\n')).toContain(`branch main was rewritten: the applied ${b}`);
  });

  it('deploys a non-descendant when the push was forced or an operator asked', async () => {
    for (const extra of [{ forced: true }, { allowBackward: true }]) {
      const parts = withHistory();
      parts.sink.runs = b;
      const record = await runAt(parts, c, extra);
      expect(record.state).toBe('succeeded');
      expect(parts.history.asked).toEqual([]);
      expect(parts.sink.requests.map((request) => request.revision)).toEqual([c]);
    }
  });

  it('deploys as before when the flake is no git repository, and says so', async () => {
    const parts = withHistory();
    parts.history.git = false;
    parts.sink.runs = b;
    const record = await runAt(parts, c);
    expect(record.state).toBe('succeeded');
    expect(record.log.join('\n')).toContain('not a git flake');
  });

  it('retries a history it cannot read, and fails a commit the repository lacks at once', async () => {
    const parts = withHistory();
    parts.sink.runs = b;
    parts.history.ancestry = () =>
      Promise.reject(new HistoryUnavailable('could not fetch branch main', true));
    const early = await runAt(parts, c).catch((error: unknown) => error);
    expect((early as BuildFailed).retryable).toBe(true);
    expect(parts.records.records.get(buildJobId(FLAKE, c))).toMatchObject({
      state: 'queued',
      error: { kind: 'history' },
    });
    parts.history.ancestry = () =>
      Promise.reject(new HistoryUnavailable(`commit ${c} is not in the repository`, false));
    const missing = await runAt(parts, c).catch((error: unknown) => error);
    expect((missing as BuildFailed).retryable).toBe(false);
    expect(parts.sink.requests).toEqual([]);
  });
});
