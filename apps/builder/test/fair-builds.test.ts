// Fair builds (issue 19, item 9): a flake pushing in a loop keeps at most its cap of
// builds waiting, so another flake's build is not queued behind the whole loop. Real
// Redis, a real builder (one worker), real nix; the reconciler is the stand-in.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { DEFAULT_MAX_QUEUED_BUILDS } from '@seed/contracts';
import type { FlakeRepo } from '@seed/testing';
import { startBuilderStack, type BuilderStack } from './builder-stack';
import type { FakeReconciler } from './fake-reconciler';
import { Pushes, commit, finished, flake, getBuilds } from './harness';

let stack: BuilderStack;
let reconciler: FakeReconciler;
let url: string;
let pushes: Pushes;
let scratch: string;
const repos: FlakeRepo[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'seed-fair-'));
  // Sandboxed builds see only this host folder: the gate the first build waits on.
  await chmod(scratch, 0o777);
  stack = await startBuilderStack(
    {
      // One build slot, and the running build is not cancelled by newer pushes: the worker
      // stays busy for the whole loop, so what waits in the queue is what the test sees.
      SEED_BUILDER_CONCURRENCY: '1',
      SEED_CANCEL_SUPERSEDED: 'false',
    },
    [scratch],
  );
  ({ reconciler, url, pushes } = stack);
});

afterAll(async () => {
  // A failed assertion may leave the first build waiting on its gate.
  if (scratch) await writeFile(path.join(scratch, 'open'), '');
  await stack?.stop();
  await Promise.all(repos.map((repo) => repo.dispose()));
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 60_000; !(await condition());) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

it("attack: a flake pushing in a loop keeps at most its cap waiting, and another flake's build takes the next slot", async () => {
  const gate = path.join(scratch, 'open');
  const started = path.join(scratch, 'started');
  const a = await flake({
    a: { build: `touch ${started}; while [ ! -e ${gate} ]; do sleep 0.1; done; echo a > $out` },
  });
  const b = await flake({ b: {} });
  repos.push(a, b);

  const first = await pushes.push(a, await a.head());
  await until(() => existsSync(started), "A's first build to start");

  // A pushes in a loop while its first build holds the only slot, B pushes once in the
  // middle of it.
  const loop = async (from: number, count: number) => {
    const ids: string[] = [];
    for (let i = from; i < from + count; i++)
      ids.push(await pushes.push(a, await commit(a, { a: { build: `echo a${i} > $out` } })));
    return ids;
  };
  const before = await loop(1, 30);
  const bJob = await pushes.push(b, await b.head());
  const after = await loop(31, 30);
  const aLatest = after.at(-1)!;

  const waitingOfA = (await pushes.queue.getJobs(['waiting'])).filter(
    (job) => (job.data as { flake: string }).flake === a.url(),
  );
  expect(waitingOfA.length).toBeLessThanOrEqual(DEFAULT_MAX_QUEUED_BUILDS);

  await writeFile(gate, '');
  expect((await finished(url, bJob)).state).toBe('succeeded');
  expect((await finished(url, aLatest)).state).toBe('succeeded');
  expect((await finished(url, first)).state).toBe('succeeded');

  // B was applied right after A's first build: one build slot, not A's whole loop.
  const order = reconciler.applied
    .filter((request) => [a.url(), b.url()].includes(request.flakeUri))
    .map((request) => (request.flakeUri === b.url() ? 'B' : `A@${request.revision.slice(0, 7)}`));
  expect(order.indexOf('B')).toBe(1);

  // A worker took (and recorded) A's first build, its latest, and at most its cap of
  // superseded builds; the rest of the loop was dropped from the queue unbuilt. Before
  // the cap a worker took every one of the 60 and ended it `superseded`.
  await until(
    async () => (await pushes.queue.getJobs(['waiting', 'active'])).length === 0,
    'the queue to empty',
  );
  const listed = (await (
    await getBuilds(`${url}/builds?flake=${encodeURIComponent(a.url())}&limit=200`)
  ).json()) as { builds: { id: string; state: string }[] };
  const superseded = listed.builds.filter((build) => build.state === 'superseded');
  expect(superseded.length).toBeLessThanOrEqual(DEFAULT_MAX_QUEUED_BUILDS);
  expect(listed.builds.length).toBe(superseded.length + 2);
  expect([...before, ...after].filter((id) => !listed.builds.some((b) => b.id === id)).length).toBe(
    60 - superseded.length - 1,
  );
}, 180_000);
