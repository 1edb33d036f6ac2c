// GitHistory against real git repositories (FlakeRepo): the ancestry the builder's
// "only forward" check asks, through a bare mirror of each flake.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FlakeRepo } from '@seed/testing';
import { GitHistory, HistoryUnavailable } from '../src/repositories/git-history.repository';

let dir: string;
let history: GitHistory;
const repos: FlakeRepo[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'seed-history-test-'));
  history = new GitHistory({ dir, timeoutMs: 30_000 });
});

afterAll(async () => {
  await Promise.all(repos.map((repo) => repo.dispose()));
  await rm(dir, { recursive: true, force: true });
});

async function repo(): Promise<FlakeRepo> {
  const created = await FlakeRepo.create({ 'flake.nix': '{ outputs = _: { }; }\n' });
  repos.push(created);
  return created;
}

describe('GitHistory', () => {
  it('tells a descendant from a commit on another line, after a rewrite as well', async () => {
    const flake = await repo();
    const a = await flake.head();
    const b = await flake.commit({ 'b.txt': 'b\n' });
    expect(await history.descends(flake.url(), 'main', a, b)).toBe(true);
    expect(await history.descends(flake.url(), 'main', b, a)).toBe(false);
    expect(await history.descends(flake.url(), 'main', b, b)).toBe(true);

    // Rewritten: C on A, B no longer on the branch (but still in the mirror).
    await promisify(execFile)('git', ['-C', flake.dir, 'reset', '--quiet', '--hard', a]);
    const c = await flake.commit({ 'c.txt': 'c\n' });
    expect(await history.descends(flake.url(), 'main', b, c)).toBe(false);
    expect(await history.descends(flake.url(), 'main', a, c)).toBe(true);
  });

  it('answers false for an applied commit the repository never had', async () => {
    const flake = await repo();
    const head = await flake.head();
    expect(await history.descends(flake.url(), 'main', 'f'.repeat(40), head)).toBe(false);
  });

  it('fails a pushed commit the repository lacks at once, an unreachable one for a retry', async () => {
    const flake = await repo();
    const head = await flake.head();
    const missing = await history
      .descends(flake.url(), 'main', head, 'e'.repeat(40))
      .catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(HistoryUnavailable);
    expect(missing).toMatchObject({ retryable: false });
    expect((missing as Error).message).toContain(`commit ${'e'.repeat(40)} is not in`);

    const gone = await history
      .descends(`git+file://${dir}/no-such-repo`, 'main', head, head)
      .catch((error: unknown) => error);
    expect(gone).toBeInstanceOf(HistoryUnavailable);
    expect(gone).toMatchObject({ retryable: true });
    expect((gone as Error).message).toContain('could not fetch branch main');
  });

  it('cannot ask a flake that is no git repository', async () => {
    expect(
      await history.descends('path:/srv/flake', 'main', 'a'.repeat(40), 'b'.repeat(40)),
    ).toBeUndefined();
  });
});
