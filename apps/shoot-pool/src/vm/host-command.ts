import { execFile } from 'node:child_process';

export interface HostCommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a short host command (mount, umount) from an argv array with a deadline, and
 * resolves with its exit code and output; only a command that cannot be started at all
 * rejects. Output is small text here, so it is decoded as UTF-8.
 */
export function runHostCommand(
  argv: readonly string[],
  timeoutMs = 10_000,
): Promise<HostCommandResult> {
  const [command, ...args] = argv;
  if (command === undefined) return Promise.reject(new TypeError('runHostCommand needs argv'));
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ code: 0, stdout, stderr });
          return;
        }
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'number') {
          resolve({ code, stdout, stderr });
          return;
        }
        if (error.killed) {
          resolve({ code: 124, stdout, stderr: `${stderr}killed after ${timeoutMs} ms` });
          return;
        }
        reject(new Error(`cannot run ${command}: ${error.message}`, { cause: error }));
      },
    );
  });
}
