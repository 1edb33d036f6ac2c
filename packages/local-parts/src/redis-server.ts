import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hasExited, spawnOwned } from './owned-process';
import { freeLoopbackPort } from './ports';

export interface LocalRedis {
  host: string;
  port: number;
  url: string;
  /** Stops the server (SHUTDOWN-like SIGTERM: the append-only file is flushed). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  dispose(): Promise<void>;
}

/**
 * A real redis-server on a free loopback port, in a temp directory of its own. The
 * append-only file is on, so a test can stop and restart it and see that nothing that
 * was acknowledged got lost, as in production.
 */
export async function startRedis(): Promise<LocalRedis> {
  const dir = await mkdtemp(path.join(tmpdir(), 'seed-redis-'));
  const port = await freeLoopbackPort();
  let child: ChildProcess | undefined;

  const start = async () => {
    const args = [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      // BullMQ needs keys never evicted.
      '--maxmemory-policy',
      'noeviction',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
    ];
    // stderr is dropped: redis warns about the host's overcommit setting on every start.
    const process = spawnOwned('redis-server', args, { stdio: ['ignore', 'ignore', 'ignore'] });
    child = process;
    try {
      await waitForPong(port, process);
    } catch (error) {
      process.kill('SIGKILL');
      throw error;
    }
  };

  const stop = async () => {
    const process = child;
    child = undefined;
    if (!process || hasExited(process)) return;
    await new Promise<void>((resolve) => {
      process.once('exit', () => resolve());
      process.kill('SIGTERM');
    });
  };

  try {
    await start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    stop,
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPong(port: number, process: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (hasExited(process))
      throw new Error(`redis-server exited (${process.signalCode ?? process.exitCode})`);
    if (await ping(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
