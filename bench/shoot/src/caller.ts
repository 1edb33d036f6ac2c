// A caller of the pool in a process of its own. A real caller is another pod: its HTTP
// client and JSON parsing do not wait behind the daemon's event loop, and the daemon's
// work after the answer (the used clone's teardown, the refill's spawn) does not delay its
// reading of the answer. A `fetch` on the daemon's own loop charged both to the shoot (warm
// p50 23.6 against 21.4 ms in a thread of its own). A process, as a caller is; a worker
// thread measured the same within the noise.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

interface ShootAnswered {
  id: number;
  ms?: number;
  error?: string;
}

export class ProcessCaller {
  readonly #child: ChildProcess = fork(path.join(__dirname, 'caller-process.js'), {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  readonly #pending = new Map<number, { resolve(ms: number): void; reject(e: Error): void }>();
  #next = 0;

  constructor() {
    this.#child.on('message', ({ id, ms, error }: ShootAnswered) => {
      const pending = this.#pending.get(id)!;
      this.#pending.delete(id);
      if (error === undefined) pending.resolve(ms!);
      else pending.reject(new Error(error));
    });
    this.#child.on('exit', (code, signal) => {
      const error = new Error(`the caller process ended (${signal ?? code})`);
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    });
  }

  /** Its process id: its CPU is the caller's, not the daemon's or its children's. */
  get pid(): number {
    return this.#child.pid!;
  }

  /** One POST /shoot that must exit 0; its latency in ms as the caller saw it. */
  shoot(url: string, command: string[]): Promise<number> {
    return this.#ask({ url, command });
  }

  /** One GET of `path` that must answer 200 with JSON: the bare HTTP round trip, in ms. */
  get(url: string, path: string): Promise<number> {
    return this.#ask({ url, path });
  }

  #ask(ask: { url: string; command?: string[]; path?: string }): Promise<number> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#child.send({ id, ...ask });
    });
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill();
    await exited;
  }
}
