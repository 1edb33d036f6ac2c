import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { StillMounted, mountsUnder, removeUnmountedTree } from '@seed/mount-table';
import { bindMount, unmount } from '../src/vm/host-mounts';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'shoot-mounts-'));
});

afterEach(async () => {
  for (const point of await mountsUnder(root)) await unmount(point);
  await rm(root, { recursive: true, force: true });
});

describe('host mounts', () => {
  it('binds read-only, lists mounts deepest first, and never removes through a mount', async () => {
    const volume = path.join(root, 'volume');
    const run = path.join(root, 'run');
    const target = path.join(run, 'export', 'vol0');
    await mkdir(volume);
    await mkdir(target, { recursive: true });
    await writeFile(path.join(volume, 'precious.txt'), 'keep\n');

    await bindMount(path.join(run, 'export'), path.join(run, 'export'), true);
    await bindMount(volume, target, true);
    expect(await mountsUnder(run)).toEqual([target, path.join(run, 'export')]);
    await expect(writeFile(path.join(target, 'new.txt'), 'x')).rejects.toMatchObject({
      code: 'EROFS',
    });

    await expect(removeUnmountedTree(run)).rejects.toBeInstanceOf(StillMounted);
    expect(await readFile(path.join(volume, 'precious.txt'), 'utf8')).toBe('keep\n');

    await unmount(target);
    await unmount(path.join(run, 'export'));
    await removeUnmountedTree(run);
    expect(existsSync(run)).toBe(false);
    expect(await readFile(path.join(volume, 'precious.txt'), 'utf8')).toBe('keep\n');
  });
});
