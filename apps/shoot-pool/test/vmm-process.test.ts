import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isAlive, killOrphan, processesReferencing } from '../src/vm/vmm-process';

describe('processesReferencing', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'vmm-process-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  // A VMM between fork and execve: its command line is still the daemon's (none of the
  // run root in it), but spawnVmm has already pointed its stdout at the VM's log.
  it('finds a process by its stdout under the folder when its command line names none of it', async () => {
    const log = openSync(path.join(root, 'vmm.log'), 'a');
    const child = spawn('sleep', ['60'], { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    const pid = child.pid!;
    try {
      expect(await processesReferencing(`${root}/`)).toEqual([pid]);
      expect(await processesReferencing(`${root}-other/`)).toEqual([]);
    } finally {
      await killOrphan(pid);
    }
    expect(isAlive(pid)).toBe(false);
  });

  it('finds a process by a path under the folder in its command line', async () => {
    const child = spawn('sleep', ['60'], {
      detached: true,
      stdio: 'ignore',
      argv0: `${root}/sleep`,
    });
    const pid = child.pid!;
    try {
      expect(await processesReferencing(`${root}/`)).toEqual([pid]);
    } finally {
      await killOrphan(pid);
    }
  });
});
