// Host-side bind mounts for a VM's export folder. Binds let a warm clone receive a
// caller's folders at request time without touching the VMM: the guest has the share
// mounted already and sees a bind appear at once (9p with cache=none).
//
// They are made by seed-mount (src/native/seed-mount.c, built static into dist/ by the
// package's build): one long-lived process that calls mount(2)/umount2(2) per request
// (~0.1 ms each), where a mount(8) process per bind cost ~3-8 ms on every shoot's path
// and spawning from the daemon blocks its event loop. Requests are answered in order.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

export class MountError extends Error {
  override readonly name = 'MountError';

  constructor(
    message: string,
    /** The helper's errno and the step that failed (`source`, `bind`, ...), if it answered. */
    readonly failure?: { errno: number; step: string },
  ) {
    super(message);
  }
}

/** dist/seed-mount, the same depth from src/vm and dist/vm (tests run the sources). */
export const MOUNT_HELPER = path.resolve(__dirname, '../../dist/seed-mount');

/** A request the helper has not answered within this long kills it (the next starts one). */
const REQUEST_TIMEOUT_MS = 10_000;

interface Pending {
  description: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

class MountHelper {
  readonly #child: ChildProcessByStdio<Writable, Readable, null>;
  readonly #pending: Pending[] = [];
  #output = '';
  #timer: NodeJS.Timeout | undefined;
  #dead = false;

  constructor(binary: string) {
    this.#child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'ignore'] });
    // An idle helper must not keep the daemon (or a test run) alive.
    this.#child.unref();
    (this.#child.stdout as Readable & { unref(): void }).unref();
    (this.#child.stdin as Writable & { unref(): void }).unref();
    this.#child.stdout.setEncoding('utf8');
    this.#child.stdout.on('data', (chunk: string) => this.#read(chunk));
    this.#child.once('error', (error) => this.#die(`cannot run ${binary}: ${error.message}`));
    this.#child.once('exit', (code, signal) => this.#die(`${binary} exited (${signal ?? code})`));
    this.#child.stdin.on('error', () => undefined); // 'exit' follows and does the work
  }

  get dead(): boolean {
    return this.#dead;
  }

  request(op: 'bind' | 'umount', flags: string, source: string, target: string): Promise<void> {
    const description = op === 'bind' ? `bind ${source} onto ${target}` : `umount ${target}`;
    for (const field of [source, target]) {
      if (field.includes('\0')) return Promise.reject(new TypeError('a path contains NUL'));
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ description, resolve, reject });
      this.#arm();
      this.#child.stdin.write(`${op}\0${flags}\0${source}\0${target}\0`);
    });
  }

  #read(chunk: string): void {
    this.#output += chunk;
    let newline;
    while ((newline = this.#output.indexOf('\n')) >= 0) {
      const line = this.#output.slice(0, newline);
      this.#output = this.#output.slice(newline + 1);
      const pending = this.#pending.shift();
      if (pending === undefined) continue;
      if (line === '0') {
        pending.resolve();
        continue;
      }
      const [, errno, step] = /^(\d+) ([^:]+):/.exec(line) ?? [];
      pending.reject(
        new MountError(
          `${pending.description} failed: ${line}`,
          errno === undefined ? undefined : { errno: Number(errno), step: step! },
        ),
      );
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#arm();
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#pending.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#child.kill('SIGKILL');
      this.#die(`no answer within ${REQUEST_TIMEOUT_MS} ms`);
    }, REQUEST_TIMEOUT_MS);
    // Not unref'd: while a request waits, the pending answer keeps the process alive (the
    // helper's own pipes are unref'd so that an idle helper does not).
  }

  #die(reason: string): void {
    this.#dead = true;
    clearTimeout(this.#timer);
    for (const pending of this.#pending.splice(0)) {
      pending.reject(new MountError(`${pending.description}: ${reason}`));
    }
  }
}

let helper: MountHelper | undefined;

async function mountHelper(): Promise<MountHelper> {
  if (helper === undefined || helper.dead) {
    await access(MOUNT_HELPER, constants.X_OK).catch(() => {
      throw new MountError(
        `${MOUNT_HELPER} is missing: the shoot pool's build makes it (pnpm build, needs cc and a static libc)`,
      );
    });
    if (helper === undefined || helper.dead) helper = new MountHelper(MOUNT_HELPER);
  }
  return helper;
}

export interface HostBindOptions {
  /** Checked: a bind asked to be read-only is never left writable. */
  readOnly: boolean;
  /** Take the mounts under `source` along (a closure view's per-path binds). */
  recursive?: boolean;
  /**
   * Both must be directories, else MountError with `failure.step` `source` or `target`
   * (and ENOENT or ENOTDIR) and nothing mounted.
   */
  directories?: boolean;
}

/**
 * Bind-mounts `source` onto `target`. The bind is private: mounts made under it never
 * propagate elsewhere, and the host's own mounts do not propagate into it.
 */
export async function bindMount(
  source: string,
  target: string,
  { readOnly, recursive = false, directories = false }: HostBindOptions,
): Promise<void> {
  const flags = `${readOnly ? 'r' : ''}${recursive ? 'R' : ''}${directories ? 'd' : ''}`;
  await (await mountHelper()).request('bind', flags, source, target);
}

/**
 * Unmounts `target` with whatever is mounted under it; a mount that is still busy is
 * detached lazily instead (it goes away when its last user does). The VMM is killed
 * before this runs, so busy is rare.
 */
export async function unmount(target: string): Promise<void> {
  await (await mountHelper()).request('umount', '', '', target);
}

/**
 * Unmounts `targets` in order (a VM's teardown, innermost first); keeps going past a
 * failure, so one stuck mount does not keep the others mounted.
 */
export async function unmountAll(targets: readonly string[]): Promise<void> {
  // Sent at once: the helper takes them in order.
  const results = await Promise.allSettled(targets.map((target) => unmount(target)));
  const failed = results.flatMap((result) =>
    result.status === 'rejected' ? [String(result.reason)] : [],
  );
  if (failed.length > 0) throw new MountError(failed.join('; '));
}
