// Starting, watching and ending VMM processes (QEMU, Cloud Hypervisor, virtiofsd).
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface VmmProcess {
  pid: number;
  /** Settles when the process ends; never rejects. */
  exited: Promise<ProcessExit>;
  /** Whether it has ended. */
  readonly done: boolean;
}

/**
 * Starts a VMM from an argv array with stdout and stderr appended to `logPath`. It runs
 * in a session of its own (detached): it must outlive a crashed daemon so the next one
 * can find and reap it (reapOrphans) rather than have it die half-way through a write,
 * and a signal to the daemon's process group must not reach it. Resolves once the
 * process exists; rejects if it cannot be started.
 */
export function spawnVmm(
  binary: string,
  args: readonly string[],
  logPath: string,
  options: { cwd?: string } = {},
): Promise<VmmProcess> {
  const log = openSync(logPath, 'a');
  try {
    const child = spawn(binary, args, {
      cwd: options.cwd,
      detached: true,
      stdio: ['ignore', log, log],
    });
    // Not a reason for the daemon (or a test run) to stay alive.
    child.unref();
    let done = false;
    const exited = new Promise<ProcessExit>((resolve) => {
      child.once('exit', (code, signal) => {
        done = true;
        resolve({ code, signal });
      });
    });
    return new Promise((resolve, reject) => {
      child.once('error', (error) => {
        done = true;
        reject(error);
      });
      child.once('spawn', () => {
        resolve({
          pid: child.pid!,
          exited,
          get done() {
            return done;
          },
        });
      });
    });
  } finally {
    closeSync(log); // the child has its own copy
  }
}

/** How much lower than the daemon's a restoring clone's priority is (nice increment). */
export const RESTORE_NICENESS = 10;

/**
 * Sets the nice value of every thread of `pid` (a priority is per thread on Linux, and
 * `setpriority` on a pid reaches only its main thread).
 */
export async function setProcessPriority(pid: number, niceness: number): Promise<void> {
  const tasks = await readdir(`/proc/${pid}/task`);
  for (const tid of tasks) {
    try {
      setPriority(Number(tid), niceness);
    } catch (error) {
      // A thread that ended meanwhile.
      if ((error as { info?: { code?: string } }).info?.code !== 'ESRCH') throw error;
    }
  }
}

/**
 * SIGKILLs a VMM's whole process group (it leads one: see spawnVmm; QEMU's migration
 * helpers run in it) and waits for it to be gone. No graceful stop: a shoot VM holds
 * nothing worth flushing, and a guest that ignores ACPI must not stall a teardown.
 */
export async function killVmm(process: VmmProcess, timeoutMs = 5_000): Promise<void> {
  if (process.done) return;
  signalGroup(process.pid, 'SIGKILL');
  const timer = new AbortController();
  const gone = await Promise.race([
    process.exited.then(() => true),
    sleep(timeoutMs, false, { signal: timer.signal }).catch(() => false),
  ]);
  timer.abort(); // the losing sleep must not hold the event loop for timeoutMs
  if (!gone) throw new Error(`process ${process.pid} still running ${timeoutMs} ms after SIGKILL`);
}

/** SIGKILLs a process that is not our child (an orphan) and waits until it is gone. */
export async function killOrphan(pid: number, timeoutMs = 5_000): Promise<void> {
  signalGroup(pid, 'SIGKILL');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} survived SIGKILL`);
    await sleep(10);
  }
}

/** Signals a process group led by `pid`, or the process alone if it leads none. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Whether a process exists and is not a zombie waiting for its parent. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return processState(pid) !== 'Z';
}

function processState(pid: number): string | undefined {
  try {
    // Synchronous on purpose: /proc reads do not block.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * Processes whose command line mentions a path under `dir` (its run directory appears in
 * every argv this driver builds), or whose stdout is a file under it (spawnVmm's log):
 * how orphans are found without trusting a pid file, since a pid may have been reused
 * since it was written. The stdout test catches a VMM caught between fork and execve,
 * still wearing the daemon's command line, which would otherwise finish its execve after
 * the reaper had looked and outlive the clean-up.
 */
export async function processesReferencing(dir: string): Promise<number[]> {
  const found: number[] = [];
  const self = process.pid;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === self) continue;
    if ((await commandLineNames(pid, dir)) || (await stdoutUnder(pid, dir))) found.push(pid);
  }
  return found;
}

async function commandLineNames(pid: number, dir: string): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.split('\0').some((arg) => arg.includes(dir));
  } catch {
    return false; // exited while we looked
  }
}

async function stdoutUnder(pid: number, dir: string): Promise<boolean> {
  try {
    return (await readlink(`/proc/${pid}/fd/1`)).startsWith(dir);
  } catch {
    return false; // exited, or no stdout
  }
}
