import type { ChildProcess, ChildProcessByStdio } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { hasExited, spawnOwned } from './owned-process';

export interface LogLine {
  msg?: string;
  level?: number;
  [field: string]: unknown;
}

export interface ServiceProcess {
  child: ChildProcess;
  /** JSON log lines printed so far. */
  logs: LogLine[];
  /** stderr printed so far (start-up errors are plain text). */
  stderr(): string;
  /** Resolves with the first log line the predicate accepts. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves, once it is gone, with how it ended. */
  stop(graceMs: number): Promise<string>;
  /** True once the process has exited, by code or by signal. */
  hasExited(): boolean;
  /** Resolves once `<url>/healthz` answers 200; fails if the process exits first. */
  healthy(url: string, timeoutMs?: number): Promise<void>;
}

// A long-running service (`seed up --keep`) must not grow without bound in memory.
const LOG_LINES_KEPT = 10_000;
const STDERR_BYTES_KEPT = 64 * 1024;

/**
 * Runs a built service (`node dist/main.js`) the way an operator would, reading its JSON
 * logs; with `logFile`, everything it prints is also appended there.
 */
export function startServiceProcess(
  script: string,
  env: NodeJS.ProcessEnv,
  options: { logFile?: string } = {},
): ServiceProcess {
  const child = spawnOwned(process.execPath, [script], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcessByStdio<null, Readable, Readable>;
  const file = options.logFile === undefined ? undefined : createWriteStream(options.logFile);
  file?.on('error', () => undefined); // the log file is a convenience, never a failure
  child.once('exit', () => file?.end());
  const logs: LogLine[] = [];
  const waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  let stderr = '';
  let pending = '';

  child.stdout.on('data', (chunk: Buffer) => {
    file?.write(chunk);
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const text of lines) {
      if (!text.trim()) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text, notJson: true };
      }
      logs.push(line);
      if (logs.length > LOG_LINES_KEPT) logs.splice(0, logs.length - LOG_LINES_KEPT);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    file?.write(chunk);
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_BYTES_KEPT);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  return {
    child,
    logs,
    stderr: () => stderr,
    exited,
    hasExited: () => hasExited(child),
    kill: (signal = 'SIGTERM') => {
      child.kill(signal);
    },
    stop: async (graceMs) => {
      if (hasExited(child)) return 'already exited';
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      const exit = await Promise.race([exited, graceOver]);
      clearTimeout(timer);
      if (exit !== 'timeout')
        return exit.code === 0 ? 'exit 0' : `exit ${exit.code ?? exit.signal}`;
      child.kill('SIGKILL');
      await exited;
      return `killed: no exit within ${graceMs} ms of SIGTERM`;
    },
    healthy: async (url, timeoutMs = 15_000) => {
      for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
        if (hasExited(child)) throw new Error(`${script} exited: ${stderr}`);
        const response = await fetch(`${url}/healthz`).catch(() => undefined);
        if (response?.ok) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`${url} did not become healthy within ${timeoutMs} ms: ${stderr}`);
    },
    waitForLog: (predicate, timeoutMs = 15_000) => {
      const seen = logs.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`,
              ),
            ),
          timeoutMs,
        );
        void exited.then(({ code }) => {
          clearTimeout(timer);
          reject(new Error(`the process exited (${code}) first; stderr: ${stderr.slice(-2000)}`));
        });
        waiters.push({
          predicate,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
      });
    },
  };
}
