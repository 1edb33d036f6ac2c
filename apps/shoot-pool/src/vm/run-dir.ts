// Where a driver keeps its VMs' files, and the records that let a restarted daemon find
// what the previous one left behind (reap-orphans.ts).
//
//   <runRoot>/vms/<vmId>/          vm.json, sockets, console.log, vmm.log, pid file, export/
//   <runRoot>/snapshots/<id>/      snapshot.json, device state
//   <shmDir>/seed-shoot-<runRootHash>-<id>.ram   guest memory (templates, snapshots)
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

export class RunLayout {
  readonly #prefix: string;

  constructor(
    readonly runRoot: string,
    readonly shmDir: string,
  ) {
    // Memory files of several run roots share /dev/shm: name them by their run root.
    this.#prefix = `seed-shoot-${createHash('sha256').update(runRoot).digest('hex').slice(0, 10)}-`;
  }

  vmDir(id: string): string {
    return path.join(this.runRoot, 'vms', id);
  }

  snapshotDir(id: string): string {
    return path.join(this.runRoot, 'snapshots', id);
  }

  ramFile(id: string): string {
    return path.join(this.shmDir, `${this.#prefix}${id}.ram`);
  }

  /** Whether a file name in shmDir is one of this run root's memory files. */
  ownsRamFile(name: string): boolean {
    return name.startsWith(this.#prefix) && name.endsWith('.ram');
  }
}

/** Writes a JSON record atomically (write + rename): a crash never leaves half a record. */
export async function writeRecord(file: string, record: object): Promise<void> {
  const temporary = `${file}.tmp`;
  await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`);
  await rename(temporary, file);
}

export async function readRecord(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}
