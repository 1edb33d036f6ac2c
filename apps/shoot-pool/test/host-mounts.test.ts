import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { StillMounted, mountsUnder, removeUnmountedTree } from '@seed/mount-table';
import { MountError, bindMount, unmount, unmountAll } from '../src/vm/host-mounts';

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

  it('binds a tree of mounts recursively and takes it down in one unmount', async () => {
    const view = path.join(root, 'view');
    const target = path.join(root, 'export', 'store');
    await mkdir(target, { recursive: true });
    const members = ['a', 'b', 'c'].map((name) => path.join(view, name));
    for (const member of members) {
      await mkdir(`${member}-src`, { recursive: true });
      await writeFile(path.join(`${member}-src`, 'file'), member);
      await mkdir(member);
      await bindMount(`${member}-src`, member, true);
    }
    await bindMount(view, target, true, true);
    expect(await readFile(path.join(target, 'b', 'file'), 'utf8')).toBe(members[1]);
    expect(await mountsUnder(target)).toHaveLength(4);
    await expect(writeFile(path.join(target, 'a', 'new'), 'x')).rejects.toMatchObject({
      code: 'EROFS',
    });

    await unmountAll([target]);
    expect(await mountsUnder(target)).toEqual([]);
    // The view itself is untouched.
    expect(await mountsUnder(view)).toHaveLength(3);
  });

  it('says why a bind or an unmount failed', async () => {
    const target = path.join(root, 'target');
    await mkdir(target);
    await expect(bindMount(path.join(root, 'missing'), target, false)).rejects.toThrow(
      new MountError(
        `bind ${path.join(root, 'missing')} onto ${target} failed: 2 bind: No such file or directory`,
      ),
    );
    await expect(unmount(target)).rejects.toThrow(/umount .* failed: 22 umount: Invalid argument/);
    expect(await mountsUnder(root)).toEqual([]);
  });
});
