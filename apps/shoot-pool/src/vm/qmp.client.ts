// A small QMP (QEMU Machine Protocol) client over QEMU's `-qmp unix:...` socket: greeting
// and capabilities negotiation, commands matched to their answers by id, and events.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type QmpErrorKind =
  | 'unreachable' // the socket cannot be connected to
  | 'timeout' // no answer in time
  | 'closed' // QEMU closed the connection (it exited)
  | 'protocol' // not QMP
  | 'command'; // QEMU answered the command with an error (`errorClass`)

export class QmpError extends Error {
  override readonly name = 'QmpError';

  constructor(
    readonly kind: QmpErrorKind,
    readonly command: string,
    message: string,
    readonly errorClass?: string,
  ) {
    super(`qmp ${command}: ${message}`);
  }
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpConnectOptions {
  /** Keep trying this long while the socket does not exist yet (QEMU starting). */
  timeoutMs?: number;
  /** Stop trying when this fires (QEMU exited). */
  signal?: AbortSignal;
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (error: QmpError) => void;
  timer: NodeJS.Timeout;
}

const MAX_LINE = 16 * 1024 * 1024;

export class QmpClient {
  readonly #socket: net.Socket;
  readonly #pending = new Map<number, Pending>();
  readonly #events = new EventEmitter();
  #buffer = '';
  #nextId = 1;
  #closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#events.setMaxListeners(0);
  }

  /**
   * Connects (retrying while QEMU has not created the socket yet), reads the greeting
   * and leaves capabilities negotiation mode, after which commands are accepted.
   */
  static async connect(socketPath: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    for (;;) {
      try {
        const socket = await openSocket(socketPath);
        const client = new QmpClient(socket);
        await client.#greet(Math.max(deadline - Date.now(), 1_000));
        return client;
      } catch (error) {
        const retry =
          error instanceof QmpError &&
          error.kind === 'unreachable' &&
          Date.now() < deadline &&
          options.signal?.aborted !== true;
        if (!retry) throw error;
        await sleep(10);
      }
    }
  }

  /** Runs a command and resolves with its `return` value. */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = 10_000,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(new QmpError('closed', command, 'connection closed'));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new QmpError('timeout', command, `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { command, resolve: (v) => resolve(v as T), reject, timer });
      const message =
        args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.#socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /** Calls `listener` for every event QEMU sends; returns a function that unsubscribes. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.#events.on('event', listener);
    return () => this.#events.off('event', listener);
  }

  close(): void {
    if (this.#closed) return;
    this.#socket.destroy();
    this.#fail(new QmpError('closed', '', 'connection closed'));
  }

  async #greet(timeoutMs: number): Promise<void> {
    this.#socket.setEncoding('utf8');
    const greeting = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new QmpError('timeout', 'greeting', `no greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#events.once('greeting', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#events.once('failed', (error: QmpError) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    this.#socket.on('data', (chunk: string) => this.#onData(chunk));
    this.#socket.on('error', () => undefined); // 'close' follows
    this.#socket.on('close', () => {
      this.#fail(new QmpError('closed', '', 'QEMU closed the connection'));
    });
    try {
      await greeting;
      await this.execute('qmp_capabilities', undefined, timeoutMs);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    if (this.#buffer.length > MAX_LINE) {
      this.#socket.destroy();
      this.#fail(new QmpError('protocol', '', 'line longer than 16 MiB'));
      return;
    }
    for (
      let newline = this.#buffer.indexOf('\n');
      newline !== -1;
      newline = this.#buffer.indexOf('\n')
    ) {
      const line = this.#buffer.slice(0, newline).trim();
      this.#buffer = this.#buffer.slice(newline + 1);
      if (line !== '') this.#onMessage(line);
    }
  }

  #onMessage(line: string): void {
    let message: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
      message = parsed as Record<string, unknown>;
    } catch {
      this.#socket.destroy();
      this.#fail(new QmpError('protocol', '', `not JSON: ${line.slice(0, 200)}`));
      return;
    }
    if ('QMP' in message) {
      this.#events.emit('greeting');
      return;
    }
    if (typeof message.event === 'string') {
      this.#events.emit('event', message);
      return;
    }
    const id = message.id;
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (pending === undefined) return; // an answer to a command that timed out
    this.#pending.delete(id as number);
    clearTimeout(pending.timer);
    if ('return' in message) {
      pending.resolve(message.return);
      return;
    }
    const error = (message.error ?? {}) as { class?: unknown; desc?: unknown };
    pending.reject(
      new QmpError(
        'command',
        pending.command,
        typeof error.desc === 'string' ? error.desc : 'error without a description',
        typeof error.class === 'string' ? error.class : undefined,
      ),
    );
  }

  #fail(error: QmpError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#events.emit('failed', error);
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(new QmpError(error.kind, pending.command, error.message));
    }
  }
}

function openSocket(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath });
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        new QmpError('unreachable', 'connect', `${socketPath}: ${error.code ?? error.message}`),
      );
    });
  });
}
