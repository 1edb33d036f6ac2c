import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/**
 * Spawns a part this process owns. It gets a process group of its own, so a Ctrl-C at the
 * terminal reaches only the owner, which then stops its parts in order (a part that saw
 * the same SIGINT would take the owner's SIGTERM as a second signal and exit mid-way).
 * Whatever still runs when the owner exits is killed with its group.
 */
export function spawnOwned(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true });
  if (child.pid !== undefined) {
    running.add(child);
    child.once('exit', () => running.delete(child));
  }
  return child;
}

/** True once the process has exited, by code or by signal. */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}
