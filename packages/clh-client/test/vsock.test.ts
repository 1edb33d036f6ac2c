// The hybrid-vsock handshake against a stand-in for CH's vsock Unix socket, which reads
// `CONNECT <port>\n` and answers as the test tells it to.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { ClhError, connectVsock, type ClhErrorKind } from '../src';

let directory: string;
let sockets = 0;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'clh-vsock-'));
});

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

interface FakeVsock {
  path: string;
  /** The handshake lines received, one per connection. */
  connects: string[];
}

/**
 * A stand-in for CH's vsock socket: reads the first line of each connection and hands the
 * socket to `answer`, with the line.
 */
async function startFakeVsock(
  answer: (socket: net.Socket, line: string) => void,
): Promise<FakeVsock> {
  sockets += 1;
  const fake: FakeVsock = { path: path.join(directory, `vsock-${sockets}.sock`), connects: [] };
  const open = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => undefined);
    let received = '';
    const onData = (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const newline = received.indexOf('\n');
      if (newline === -1) return;
      socket.off('data', onData);
      fake.connects.push(received.slice(0, newline + 1));
      answer(socket, received.slice(0, newline));
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(fake.path, resolve));
  cleanups.push(async () => {
    for (const socket of open) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return fake;
}

async function failure(promise: Promise<unknown>): Promise<ClhError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ClhError) return error;
    throw error;
  }
  throw new Error('expected the handshake to fail');
}

function expectKind(error: ClhError, kind: ClhErrorKind, message?: RegExp): void {
  expect({ kind: error.kind, operation: error.operation }).toEqual({
    kind,
    operation: 'vsock.connect',
  });
  if (message) expect(error.message).toMatch(message);
}

/** Everything the socket yields until the other side ends it. */
function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('connectVsock', () => {
  it('sends CONNECT and keeps the bytes that came with the OK line', async () => {
    const fake = await startFakeVsock((socket) => {
      // The guest's first bytes in the same write as CH's answer, then more, then an echo.
      socket.write('OK 1073741824\nhello from the guest');
      setTimeout(() => socket.write(', and more'), 20);
      socket.once('data', (chunk: Buffer) => socket.end(` / host said: ${chunk.toString()}`));
    });
    const stream = await connectVsock(fake.path, 1024);
    expect(fake.connects).toEqual(['CONNECT 1024\n']);

    // The caller looks at the stream only later: nothing may have been lost meanwhile.
    await pause(60);
    const received = readAll(stream);
    stream.write('ping');
    expect(await received).toBe('hello from the guest, and more / host said: ping');
  });

  it('reads an OK line that arrives in pieces', async () => {
    const fake = await startFakeVsock((socket) => {
      socket.write('O');
      setTimeout(() => socket.write('K 12'), 10);
      setTimeout(() => socket.end('34\nguest bytes'), 20);
    });
    const stream = await connectVsock(fake.path, 52);
    expect(await readAll(stream)).toBe('guest bytes');
  });

  it('hands back a stream with nothing after the OK line untouched', async () => {
    const fake = await startFakeVsock((socket) => {
      socket.write('OK 5\n');
      setTimeout(() => socket.end('later'), 20);
    });
    const stream = await connectVsock(fake.path, 5000);
    expect(await readAll(stream)).toBe('later');
  });

  it('a garbage reply is a protocol error', async () => {
    const fake = await startFakeVsock((socket) => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    expectKind(await failure(connectVsock(fake.path, 1024)), 'protocol', /HTTP\/1\.1 400/);
  });

  it('an endless first line is a protocol error', async () => {
    const fake = await startFakeVsock((socket) => socket.write('OK '.padEnd(200, '9')));
    expectKind(await failure(connectVsock(fake.path, 1024)), 'protocol');
  });

  it('a connection closed after CONNECT is a rejected handshake', async () => {
    // What CH does when nothing in the guest listens on the port.
    const fake = await startFakeVsock((socket) => socket.end());
    expectKind(await failure(connectVsock(fake.path, 9999)), 'rejected', /CONNECT 9999/);
  });

  it('a connection closed in the middle of the OK line is a protocol error', async () => {
    const fake = await startFakeVsock((socket) => socket.end('OK 12'));
    expectKind(await failure(connectVsock(fake.path, 1024)), 'protocol', /OK 12/);
  });

  it('a missing socket is unreachable', async () => {
    const error = await failure(connectVsock(path.join(directory, 'none.sock'), 1024));
    expectKind(error, 'unreachable', /ENOENT/);
  });

  it('no answer times out', async () => {
    const fake = await startFakeVsock(() => undefined);
    const error = await failure(connectVsock(fake.path, 1024, { timeoutMs: 100 }));
    expectKind(error, 'timeout', /100 ms/);
  });

  it('refuses a port that is not a 32-bit unsigned integer', async () => {
    await expect(connectVsock('/nowhere', -1)).rejects.toThrow(RangeError);
    await expect(connectVsock('/nowhere', 2 ** 32)).rejects.toThrow(RangeError);
    await expect(connectVsock('/nowhere', 1.5)).rejects.toThrow(RangeError);
  });
});
