import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { mountsUnder, readMounts, removeUnmountedTree, unescapeMountPath } from '../src';

// Mounting needs root: apps/shoot-pool's host-mounts tests cover a tree with binds in it.
describe('mount table', () => {
  it('reads mountinfo escapes', () => {
    expect(unescapeMountPath('/run/a\\040b\\134c')).toBe('/run/a b\\c');
  });

  it('reads the mounts, with their options', async () => {
    const root = (await readMounts()).find((mount) => mount.point === '/');
    expect(root?.options.some((option) => option === 'rw' || option === 'ro')).toBe(true);
    expect(await mountsUnder('/proc')).toContain('/proc');
  });

  it('removes a tree nothing is mounted under', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mount-table-'));
    await mkdir(path.join(dir, 'a', 'b'), { recursive: true });
    await writeFile(path.join(dir, 'a', 'b', 'file'), 'x');
    expect(await mountsUnder(dir)).toEqual([]);
    await removeUnmountedTree(dir);
    expect(existsSync(dir)).toBe(false);
  });
});
