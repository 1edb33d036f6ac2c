import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { QmpClient, QmpError, type QmpEvent } from '../src/vm/qmp.client';

let dir: string;
let socketPath: string;
let server: net.Server | undefined;
const sockets: net.Socket[] = [];

/** A QMP server that greets, accepts qmp_capabilities and answers as `answer` says. */
function startFakeQmp(
  answer: (command: Record<string, unknown>, socket: net.Socket) => void,
): Promise<void> {
  server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.write('{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}\r\n');
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        const command = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>;
        buffer = buffer.slice(nl + 1);
        if (command.execute === 'qmp_capabilities') {
          socket.write(`{"return": {}, "id": ${String(command.id)}}\r\n`);
        } else {
          answer(command, socket);
        }
      }
    });
  });
  return new Promise((resolve) => server!.listen(socketPath, resolve));
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'qmp-'));
  socketPath = path.join(dir, 'qmp.sock');
});

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  if (server !== undefined) await new Promise((resolve) => server!.close(resolve));
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('QmpClient', () => {
  it('negotiates, runs commands by id, and delivers events', async () => {
    await startFakeQmp((command, socket) => {
      if (command.execute === 'query-status') {
        socket.write(
          '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}\r\n' +
            `{"return": {"running": true, "status": "running"}, "id": ${String(command.id)}}\r\n`,
        );
      } else {
        socket.write(
          `{"error": {"class": "GenericError", "desc": "no such thing"}, "id": ${String(command.id)}}\r\n`,
        );
      }
    });
    const qmp = await QmpClient.connect(socketPath);
    const events: QmpEvent[] = [];
    qmp.onEvent((event) => events.push(event));
    expect(await qmp.execute('query-status')).toEqual({ running: true, status: 'running' });
    expect(events.map((event) => event.event)).toEqual(['RESUME']);
    const error = await qmp.execute('migrate', { uri: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect(error).toMatchObject({
      kind: 'command',
      errorClass: 'GenericError',
      command: 'migrate',
    });
    qmp.close();
    await expect(qmp.execute('stop')).rejects.toMatchObject({ kind: 'closed' });
  });

  it('waits for a socket QEMU has not created yet', async () => {
    setTimeout(() => void startFakeQmp(() => undefined), 100);
    const qmp = await QmpClient.connect(socketPath, { timeoutMs: 5_000 });
    qmp.close();
  });

  it('gives up when the socket never appears or the signal fires', async () => {
    await expect(QmpClient.connect(socketPath, { timeoutMs: 100 })).rejects.toMatchObject({
      kind: 'unreachable',
    });
    const exited = new AbortController();
    exited.abort();
    await expect(
      QmpClient.connect(socketPath, { timeoutMs: 5_000, signal: exited.signal }),
    ).rejects.toMatchObject({ kind: 'unreachable' });
  });

  it('fails pending commands when QEMU goes away, and times out silent ones', async () => {
    await startFakeQmp((command, socket) => {
      if (command.execute === 'quit') socket.destroy();
    });
    const qmp = await QmpClient.connect(socketPath);
    await expect(qmp.execute('query-migrate', undefined, 50)).rejects.toMatchObject({
      kind: 'timeout',
    });
    await expect(qmp.execute('quit')).rejects.toMatchObject({ kind: 'closed' });
  });
});
