import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the process tree after this many milliseconds. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** stdout past this many bytes kills the process: its output would be unusable anyway. */
  maxStdoutBytes?: number;
  /** Only this many trailing bytes of stderr are kept: the end of a log says what failed. */
  maxStderrBytes?: number;
}

export type RunOutcome =
  | { status: 'exited'; code: number; stdout: Buffer; stderr: string }
  | { status: 'timeout' | 'aborted' | 'output-limit'; stdout: Buffer; stderr: string };

/**
 * Runs argv (never a shell string) and collects its output. On timeout, abort or an
 * oversized stdout the whole process tree is killed, not just the child: nix puts each
 * builder in a session of its own, so a process-group kill would leave builders running.
 */
export function runProcess(argv: readonly string[], options: RunOptions = {}): Promise<RunOutcome> {
  const [command, ...args] = argv;
  if (command === undefined) throw new TypeError('runProcess needs a command');
  const maxStdout = options.maxStdoutBytes ?? 64 * 1024 * 1024;
  const maxStderr = options.maxStderrBytes ?? 256 * 1024;

  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      resolve({ status: 'aborted', stdout: Buffer.alloc(0), stderr: '' });
      return;
    }
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr: Buffer = Buffer.alloc(0);
    let ended: 'timeout' | 'aborted' | 'output-limit' | undefined;

    const end = (why: 'timeout' | 'aborted' | 'output-limit') => {
      if (ended !== undefined || child.pid === undefined) return;
      ended = why;
      killProcessTree(child.pid);
    };
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => end('timeout'), options.timeoutMs);
    const onAbort = () => end('aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) end('output-limit');
      else stdout.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = Buffer.concat([stderr, chunk]);
      if (stderr.length > maxStderr) stderr = stderr.subarray(stderr.length - maxStderr);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      const out = { stdout: Buffer.concat(stdout), stderr: stderr.toString('utf8') };
      if (ended !== undefined) resolve({ status: ended, ...out });
      else resolve({ status: 'exited', code: code ?? 128 + signalNumber(signal), ...out });
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 0;
}

/**
 * SIGKILLs a process and every descendant. The root is stopped first so it cannot fork
 * while the tree is read from /proc; descendants are found by parent pid, which still
 * links them after they moved to a session of their own.
 */
export function killProcessTree(rootPid: number): void {
  signalQuietly(rootPid, 'SIGSTOP');
  for (const pid of descendantsOf(rootPid)) signalQuietly(pid, 'SIGSTOP');
  const tree = [rootPid, ...descendantsOf(rootPid)];
  for (const pid of tree) signalQuietly(pid, 'SIGKILL');
}

function descendantsOf(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = parentPid(Number(entry));
    if (parent === undefined) continue;
    const siblings = children.get(parent) ?? [];
    siblings.push(Number(entry));
    children.set(parent, siblings);
  }
  const found: number[] = [];
  const queue = [rootPid];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const child of children.get(pid) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function parentPid(pid: number): number | undefined {
  try {
    // The command name in field 2 may contain spaces and parentheses: parse after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return undefined; // the process exited while the table was read
  }
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
