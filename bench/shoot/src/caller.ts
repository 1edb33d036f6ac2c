// A caller of the pool in its own thread. A real caller is another pod: its HTTP client
// and JSON parsing do not wait behind the daemon's event loop, and the daemon's work after
// the answer (the used clone's teardown, the refill's spawn) does not delay its reading
// of the answer. A `fetch` on the daemon's own loop would charge both to the shoot.
import path from 'node:path';
import { Worker } from 'node:worker_threads';

interface ShootAnswered {
  id: number;
  ms?: number;
  error?: string;
}

export class ThreadCaller {
  readonly #worker = new Worker(path.join(__dirname, 'caller-thread.js'));
  readonly #pending = new Map<number, { resolve(ms: number): void; reject(e: Error): void }>();
  #next = 0;

  constructor() {
    this.#worker.on('message', ({ id, ms, error }: ShootAnswered) => {
      const pending = this.#pending.get(id)!;
      this.#pending.delete(id);
      if (error === undefined) pending.resolve(ms!);
      else pending.reject(new Error(error));
    });
    this.#worker.on('error', (error) => {
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    });
  }

  /** One POST /shoot that must exit 0; its latency in ms as the caller saw it. */
  shoot(url: string, command: string[]): Promise<number> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, url, command });
    });
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}
