import { type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { spawnOwned } from './owned-process';

/** A part of a local cluster: its output goes to `<dir>/<name>.log`. */
export class ManagedProcess {
  exitCode: number | string | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly logPath: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitCode = code ?? signal ?? 'unknown';
        resolve();
      });
      // spawn errors (missing binary) arrive as 'error' without 'exit'.
      child.on('error', (error) => {
        this.exitCode = error.message;
        resolve();
      });
    });
  }

  /** Starts `command` with stdout and stderr appended to `<dir>/<name>.log`. */
  static spawn(
    command: string,
    args: string[],
    dir: string,
    name: string,
    env?: NodeJS.ProcessEnv,
  ): ManagedProcess {
    const logPath = path.join(dir, `${name}.log`);
    const log = openSync(logPath, 'a');
    try {
      return new ManagedProcess(
        spawnOwned(command, args, { stdio: ['ignore', log, log], env }),
        logPath,
      );
    } finally {
      closeSync(log); // the child holds its own copy
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** SIGKILL, as a crash would end it. */
  async kill(): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop(graceMs: number): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** The last lines of the process's log, for start-up errors. */
  async logTail(lines = 40): Promise<string> {
    const handle = await open(this.logPath, 'r').catch(() => undefined);
    if (!handle) return '(no log)';
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, 16_384);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      const tail = buffer.toString('utf8').split('\n').slice(-lines).join('\n');
      return tail.trim() === '' ? '(empty log)' : tail;
    } finally {
      await handle.close();
    }
  }
}

/** Polls `check` until it is true, failing early (with the log tail) if the process exits. */
export async function waitFor(
  name: string,
  child: ManagedProcess,
  deadline: number,
  check: () => Promise<boolean>,
): Promise<void> {
  for (;;) {
    if (child.exitCode !== undefined) {
      throw new Error(
        `${name} exited (${child.exitCode}) while starting:\n${await child.logTail()}`,
      );
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(`${name} was not ready in time:\n${await child.logTail()}`);
    }
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
