// GitHistory against real git repositories (FlakeRepo): the ancestry the builder's
// "only forward" check asks, through a bare mirror of each flake.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { flakeKey } from '@seed/contracts';
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
  it('tells a descendant from a commit behind, and follows a rewritten branch', async () => {
    const flake = await repo();
    const a = await flake.head();
    const b = await flake.commit({ 'b.txt': 'b\n' });
    expect(await history.ancestry(flake.url(), 'main', a, b)).toBe('descends');
    expect(await history.ancestry(flake.url(), 'main', b, b)).toBe('descends');
    // A replayed or late A: B, which the flake runs, is still on the branch.
    expect(await history.ancestry(flake.url(), 'main', b, a)).toBe('behind');

    // Rewritten: C on A, B on the branch no more (but still in the mirror).
    await promisify(execFile)('git', ['-C', flake.dir, 'reset', '--quiet', '--hard', a]);
    const c = await flake.commit({ 'c.txt': 'c\n' });
    expect(await history.ancestry(flake.url(), 'main', b, c)).toBe('rewritten');
    expect(await history.ancestry(flake.url(), 'main', a, c)).toBe('descends');
    // Once C runs, A (on the branch, under C) and B (off it) are behind.
    expect(await history.ancestry(flake.url(), 'main', c, a)).toBe('behind');
    expect(await history.ancestry(flake.url(), 'main', c, b)).toBe('behind');
  });

  it('follows the branch when the applied commit was never in the repository', async () => {
    const flake = await repo();
    const head = await flake.head();
    expect(await history.ancestry(flake.url(), 'main', 'f'.repeat(40), head)).toBe('rewritten');
  });

  it('fails a pushed commit the repository lacks at once, an unreachable one for a retry', async () => {
    const flake = await repo();
    const head = await flake.head();
    const missing = await history
      .ancestry(flake.url(), 'main', head, 'e'.repeat(40))
      .catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(HistoryUnavailable);
    expect(missing).toMatchObject({ retryable: false });
    expect((missing as Error).message).toContain(`commit ${'e'.repeat(40)} is not in`);

    const gone = await history
      .ancestry(`git+file://${dir}/no-such-repo`, 'main', head, head)
      .catch((error: unknown) => error);
    expect(gone).toBeInstanceOf(HistoryUnavailable);
    expect(gone).toMatchObject({ retryable: true });
    expect((gone as Error).message).toContain('could not fetch branch main');
  });

  it('starts a mirror afresh when a killed fetch left a lock behind', async () => {
    const flake = await repo();
    const a = await flake.head();
    const b = await flake.commit({ 'b.txt': 'b\n' });
    expect(await history.ancestry(flake.url(), 'main', a, b)).toBe('descends');
    const mirror = path.join(dir, `${flakeKey(flake.url())}.git`);
    await writeFile(path.join(mirror, 'refs', 'heads', 'main.lock'), '');
    const c = await flake.commit({ 'c.txt': 'c\n' });
    const locked = await history
      .ancestry(flake.url(), 'main', b, c)
      .catch((error: unknown) => error);
    expect(locked).toMatchObject({ retryable: true });
    expect(await history.ancestry(flake.url(), 'main', b, c)).toBe('descends');
  });

  it('stops at once when its build is cancelled', async () => {
    const flake = await repo();
    const head = await flake.head();
    const controller = new AbortController();
    controller.abort(new Error('superseded'));
    await expect(
      history.ancestry(flake.url(), 'main', head, head, controller.signal),
    ).rejects.toThrow('superseded');
  });

  it('cannot ask a flake that is no git repository', async () => {
    expect(
      await history.ancestry('path:/srv/flake', 'main', 'a'.repeat(40), 'b'.repeat(40)),
    ).toBeUndefined();
  });
});
