// Short host commands (mount, umount) run through a few long-lived `sh` processes instead
// of being spawned by the daemon: a spawn forks the daemon, which costs ~1 ms per 30 MB of
// its memory (~6 ms here, on every shoot's path) and blocks the event loop meanwhile;
// `sh` forks in a fraction of that. Each shell runs one command at a time; a command that
// finds every shell busy starts another, and at most MAX_IDLE_SHELLS are kept.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

export interface HostCommandResult {
  code: number;
  stderr: string;
}

const MAX_IDLE_SHELLS = 4;
const idle: Shell[] = [];

/** One `sh -s` reading commands from its stdin; answers `<code>\n<stderr>\0` for each. */
class Shell {
  readonly #child: ChildProcessByStdio<Writable, Readable, null>;
  #output = '';
  #waiting: ((answer: HostCommandResult | Error) => void) | undefined;
  #dead = false;

  constructor() {
    // Its own process group, so a timed-out command is killed with its shell.
    this.#child = spawn('sh', ['-s'], { detached: true, stdio: ['pipe', 'pipe', 'ignore'] });
    // An idle shell must not keep the daemon (or a test run) alive.
    this.#child.unref();
    (this.#child.stdout as Readable & { unref(): void }).unref();
    (this.#child.stdin as Writable & { unref(): void }).unref();
    this.#child.stdout.setEncoding('utf8');
    this.#child.stdout.on('data', (chunk: string) => {
      this.#output += chunk;
      const end = this.#output.indexOf('\0');
      if (end < 0) return;
      const record = this.#output.slice(0, end);
      this.#output = this.#output.slice(end + 1);
      const newline = record.indexOf('\n');
      this.#settle({ code: Number(record.slice(0, newline)), stderr: record.slice(newline + 1) });
    });
    const die = (error: Error) => {
      this.#dead = true;
      const index = idle.indexOf(this);
      if (index >= 0) idle.splice(index, 1);
      this.#settle(error);
    };
    this.#child.once('error', (error) => die(new Error(`cannot run sh: ${error.message}`)));
    this.#child.once('exit', () => die(new Error('sh exited')));
    this.#child.stdin.on('error', () => undefined); // 'exit' follows and does the work
  }

  get dead(): boolean {
    return this.#dead;
  }

  run(argv: readonly string[], timeoutMs: number): Promise<HostCommandResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        this.kill();
        resolve({ code: 124, stderr: `killed after ${timeoutMs} ms` });
      }, timeoutMs);
      this.#waiting = (answer) => {
        clearTimeout(timer);
        if (answer instanceof Error) reject(answer);
        else resolve(answer);
      };
      // `$?` is the command substitution's status; the command's stdout is dropped, and its
      // stdin is not the shell's (the pipe this process writes commands into).
      this.#child.stdin.write(
        `e=$(exec ${argv.map(quote).join(' ')} </dev/null 2>&1 >/dev/null); printf '%s\\n%s\\0' "$?" "$e"\n`,
      );
    });
  }

  kill(): void {
    this.#dead = true;
    try {
      process.kill(-this.#child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  #settle(answer: HostCommandResult | Error): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.(answer);
  }
}

function quote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs a short host command from an argv array with a deadline, and resolves with its
 * exit code and stderr (127 when it cannot be found, 124 when the deadline killed it);
 * only a failure of the shell itself rejects.
 */
export async function runHostCommand(
  argv: readonly string[],
  timeoutMs = 10_000,
): Promise<HostCommandResult> {
  if (argv.length === 0) throw new TypeError('runHostCommand needs argv');
  if (argv.some((arg) => arg.includes('\0'))) throw new TypeError('argv contains NUL');
  const shell = idle.pop() ?? new Shell();
  try {
    return await shell.run(argv, timeoutMs);
  } finally {
    if (!shell.dead) {
      if (idle.length < MAX_IDLE_SHELLS) idle.push(shell);
      else shell.kill();
    }
  }
}
