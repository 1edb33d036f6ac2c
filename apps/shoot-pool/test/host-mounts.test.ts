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

    bindMount(path.join(run, 'export'), path.join(run, 'export'), { readOnly: true });
    bindMount(volume, target, { readOnly: true });
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
      bindMount(`${member}-src`, member, { readOnly: true });
    }
    bindMount(view, target, { readOnly: true, recursive: true });
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
    const missing = path.join(root, 'missing');
    expect(() => bindMount(missing, target, { readOnly: false })).toThrow(
      new MountError(`bind ${missing} onto ${target} failed: 2 bind: No such file or directory`),
    );
    await expect(unmount(target)).rejects.toThrow(/umount .* failed: 22 umount: Invalid argument/);
    // The kernel would read a path cut at its NUL: refused before any syscall.
    expect(() => bindMount(`${target}\0/etc`, target, { readOnly: true })).toThrow(/contains NUL/);
    await expect(unmount(`${target}\0/etc`)).rejects.toThrow(/contains NUL/);
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('checks that both ends are directories when asked, and names the end that is not', async () => {
    const folder = path.join(root, 'folder');
    const file = path.join(root, 'file');
    await mkdir(folder);
    await writeFile(file, 'x');
    const refusal = (source: string, target: string): MountError => {
      try {
        bindMount(source, target, { readOnly: false, directories: true });
      } catch (error) {
        return error as MountError;
      }
      throw new Error(`bound ${source} onto ${target}`);
    };

    expect(refusal(path.join(root, 'missing'), folder).failure).toEqual({
      errno: 2,
      step: 'source',
    });
    expect(refusal(file, folder).failure).toEqual({ errno: 20, step: 'source' });
    expect(refusal(folder, file).failure).toEqual({ errno: 20, step: 'target' });
    expect(refusal(folder, path.join(root, 'gone')).message).toBe(
      `bind ${folder} onto ${path.join(root, 'gone')} failed: 2 target: No such file or directory`,
    );
    expect(await mountsUnder(root)).toEqual([]);
    // Without the check a file binds onto a file.
    const other = path.join(root, 'other');
    await writeFile(other, 'y');
    bindMount(file, other, { readOnly: true });
    expect(await readFile(other, 'utf8')).toBe('x');
  });
});
