// ClhClient against stand-ins for Cloud Hypervisor on Unix sockets: the spec-following fake
// (test/fake-ch.ts) and raw servers that answer byte for byte as CH's micro_http does, or
// answer badly.
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { ClhClient, ClhError, endpointPath, type ClhErrorKind } from '../src';
import { FakeCloudHypervisor, PING } from './fake-ch';
import {
  agentVsock,
  everyClientCall,
  microVmConfig,
  snapshotDirectory,
  storageFs,
} from './samples';

let directory: string;
let sockets = 0;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'clh-client-'));
});

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

function socketPath(): string {
  sockets += 1;
  return path.join(directory, `api-${sockets}.sock`);
}

async function startFake(): Promise<FakeCloudHypervisor> {
  const fake = await FakeCloudHypervisor.start(socketPath());
  cleanups.push(() => fake.close());
  return fake;
}

async function failure(promise: Promise<unknown>): Promise<ClhError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ClhError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

function expectFailure(
  error: ClhError,
  kind: ClhErrorKind,
  operation: string,
  message?: RegExp,
): void {
  expect({ kind: error.kind, operation: error.operation }).toEqual({ kind, operation });
  if (message) expect(error.message).toMatch(message);
}

interface RawServer {
  path: string;
  /** Raw requests as received, one per connection. */
  requests: string[];
  /** Connections whose client ended or closed them. */
  closedByClient: number;
}

/**
 * A Unix-socket server speaking bytes, not HTTP: it waits for one whole request (head and
 * Content-Length bytes of body) per connection and lets `answer` write whatever it likes.
 */
async function startRawServer(answer: (socket: net.Socket) => void): Promise<RawServer> {
  const raw: RawServer = { path: socketPath(), requests: [], closedByClient: 0 };
  const open = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    open.add(socket);
    let received = '';
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      const headEnd = received.indexOf('\r\n\r\n');
      if (answered || headEnd === -1) return;
      const length = Number(/content-length: *(\d+)/i.exec(received)?.[1] ?? 0);
      if (Buffer.byteLength(received.slice(headEnd + 4)) < length) return;
      answered = true;
      raw.requests.push(received);
      answer(socket);
    });
    socket.on('end', () => {
      raw.closedByClient += 1;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(raw.path, resolve));
  cleanups.push(async () => {
    for (const socket of open) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return raw;
}

/** A reply exactly as micro_http writes it: empty reason phrase, keep-alive, JSON label. */
function microHttpReply(status: number, body?: string): string {
  const head = `HTTP/1.1 ${status} \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n`;
  if (status === 204) return `${head}\r\n`;
  const payload = body ?? '';
  return `${head}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`;
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('a slot through its life, answered as the spec says', () => {
  it('creates, boots, hot-plugs, snapshots, restores and stops a VM', async () => {
    const fake = await startFake();
    const client = new ClhClient(fake.socketPath);

    expect(await client.ping()).toEqual(PING);
    const notCreated = await failure(client.info());
    expectFailure(notCreated, 'rejected', 'vm.info', /404/);
    expect(notCreated.status).toBe(404);
    expect(notCreated.detail).toBe(
      'Error from API: The VM info is not available: VM is not created',
    );

    await client.create(microVmConfig);
    expect(await client.info()).toMatchObject({ state: 'Created', config: microVmConfig });
    // Created but not booted: CH adds the device to the configuration and answers 204.
    expect(await client.addFs(storageFs)).toBeUndefined();

    await client.boot();
    expect((await client.info()).state).toBe('Running');
    expect(await client.addVsock(agentVsock)).toEqual({ id: 'vsock1', bdf: '0000:00:06.0' });

    const running = await failure(client.snapshot({ destination_url: snapshotDirectory }));
    expectFailure(running, 'rejected', 'vm.snapshot', /Invalid VM state transition/);
    expect(running.status).toBe(500);

    await client.pause();
    await client.snapshot({ destination_url: snapshotDirectory });
    await client.resume();
    await client.shutdown();
    await client.delete();
    expectFailure(await failure(client.info()), 'rejected', 'vm.info');

    await client.restore({ source_url: snapshotDirectory, prefault: true });
    expect((await client.info()).state).toBe('Paused');
    const again = await failure(client.restore({ source_url: snapshotDirectory }));
    expect(again.status).toBe(404);
    await client.resume();
    expect((await client.info()).state).toBe('Running');

    await client.shutdownVmm();
  });
});

describe('every request on the wire', () => {
  it('has an exact Content-Length, asks to close, and comes on a connection of its own', async () => {
    const fake = await startFake();
    const client = new ClhClient(fake.socketPath);
    for (const { call } of everyClientCall) await call(client);

    expect(fake.requests).toHaveLength(everyClientCall.length);
    everyClientCall.forEach(({ method, endpoint, body }, index) => {
      const request = fake.requests[index]!;
      const json = body === undefined ? '' : JSON.stringify(body);
      expect({ method, path: request.url, headers: request.headers }).toMatchObject({
        method,
        path: endpointPath(endpoint),
        headers: {
          host: 'localhost',
          accept: 'application/json',
          connection: 'close',
          'content-length': String(Buffer.byteLength(json)),
        },
      });
      expect(request.headers['transfer-encoding']).toBeUndefined();
      expect(request.headers['content-type']).toBe(
        body === undefined ? undefined : 'application/json',
      );
      expect(request.body.toString('utf8')).toBe(json);
    });
    // The non-ASCII tag makes bytes and characters differ: the length counts bytes.
    const addFs = fake.requests.find((request) => request.url.endsWith('vm.add-fs'))!;
    expect(Number(addFs.headers['content-length'])).toBeGreaterThan(
      JSON.stringify(storageFs).length,
    );

    const connections = fake.requests.map((request) => request.connection);
    expect(new Set(connections).size).toBe(everyClientCall.length);
    expect(fake.connectionsOpened).toBe(everyClientCall.length);
    await fake.allConnectionsClosed();
  });

  it('sends Content-Length: 0 with empty PUTs and GETs', async () => {
    const fake = await startFake();
    const client = new ClhClient(fake.socketPath);
    await client.create(microVmConfig);
    await client.boot();
    await client.info();
    const [, boot, info] = fake.requests;
    expect([boot!.method, boot!.headers['content-length']]).toEqual(['PUT', '0']);
    expect([info!.method, info!.headers['content-length']]).toEqual(['GET', '0']);
  });
});

describe('what CH answers, as it writes it', () => {
  it('reads micro_http replies and closes the connection CH keeps alive', async () => {
    const replies = [
      microHttpReply(204),
      microHttpReply(200, JSON.stringify(PING)),
      microHttpReply(200, JSON.stringify({ id: '_fs0', bdf: '0000:00:05.0' })),
      microHttpReply(204),
    ];
    let next = 0;
    // The server never closes a connection, as micro_http with keep-alive.
    const raw = await startRawServer((socket) => socket.write(replies[next++]!));
    const client = new ClhClient(raw.path, { timeoutMs: 2000 });

    await client.boot();
    expect(await client.ping()).toEqual(PING);
    expect(await client.addFs(storageFs)).toEqual({ id: '_fs0', bdf: '0000:00:05.0' });
    expect(await client.addVsock(agentVsock)).toBeUndefined();
    await waitFor(() => raw.closedByClient === 4);

    expect(raw.requests[0]).toMatch(/^PUT \/api\/v1\/vm\.boot HTTP\/1\.1\r\n/);
    expect(raw.requests[0]).toMatch(/\r\nContent-Length: 0\r\n/i);
    expect(raw.requests[0]).toMatch(/\r\nConnection: close\r\n/i);
  });
});

describe('failures', () => {
  it('a 500 with CH error chain is rejected, with the status and the text', async () => {
    const fake = await startFake();
    const client = new ClhClient(fake.socketPath);
    fake.answerNext(() => ({
      status: 500,
      body: ['Error from API', 'The VM could not boot', 'Cannot open kernel image: ENOENT'],
    }));
    const error = await failure(client.boot());
    expectFailure(error, 'rejected', 'vm.boot', /answered 500: .*Cannot open kernel image/);
    expect(error.status).toBe(500);
    expect(error.detail).toBe(
      'Error from API: The VM could not boot: Cannot open kernel image: ENOENT',
    );
  });

  it('a 500 with plain text (older CH) is rejected with that text', async () => {
    const fake = await startFake();
    const client = new ClhClient(fake.socketPath);
    fake.answerNext(() => ({ status: 500, text: 'VmBoot(VmNotCreated)\n' }));
    const error = await failure(client.boot());
    expectFailure(error, 'rejected', 'vm.boot');
    expect(error.detail).toBe('VmBoot(VmNotCreated)');
  });

  it('a 400 for a body CH cannot take is rejected', async () => {
    const fake = await startFake();
    const client = new ClhClient(fake.socketPath);
    const error = await failure(
      client.create({ payload: {}, cpus: { boot_vcpus: 0, max_vcpus: 1 } }),
    );
    expectFailure(error, 'rejected', 'vm.create', /400: Failed to deserialize JSON/);
    expect(error.status).toBe(400);
  });

  it('a missing socket is unreachable', async () => {
    const client = new ClhClient(path.join(directory, 'no-such.sock'));
    expectFailure(await failure(client.ping()), 'unreachable', 'vmm.ping', /ENOENT/);
  });

  it('a path that is no listening socket is unreachable', async () => {
    const stale = path.join(directory, 'stale.sock');
    await writeFile(stale, '');
    const client = new ClhClient(stale);
    expectFailure(await failure(client.info()), 'unreachable', 'vm.info', /ECONNREFUSED/);
  });

  it('a VMM that never answers times out, and the connection is dropped', async () => {
    const fake = await startFake();
    const client = new ClhClient(fake.socketPath, { timeoutMs: 150 });
    fake.answerNext(() => 'hang');
    const started = Date.now();
    const error = await failure(client.pause());
    expectFailure(error, 'timeout', 'vm.pause', /150 ms/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    await fake.allConnectionsClosed();
  });

  it('a call may set its own deadline', async () => {
    const fake = await startFake();
    const client = new ClhClient(fake.socketPath, { timeoutMs: 60_000 });
    fake.answerNext(() => 'hang');
    const error = await failure(
      client.snapshot({ destination_url: snapshotDirectory }, { timeoutMs: 100 }),
    );
    expectFailure(error, 'timeout', 'vm.snapshot', /100 ms/);
  });

  it('a reply that is not HTTP is a protocol error', async () => {
    const raw = await startRawServer((socket) => socket.end('garbage\r\n\r\n'));
    const client = new ClhClient(raw.path);
    expectFailure(await failure(client.boot()), 'protocol', 'vm.boot', /malformed HTTP/);
  });

  it('a connection closed without a reply is a protocol error', async () => {
    const raw = await startRawServer((socket) => socket.destroy());
    const client = new ClhClient(raw.path);
    expectFailure(await failure(client.info()), 'protocol', 'vm.info', /without a reply/);
  });

  it('a reply cut short of its Content-Length is a protocol error', async () => {
    const raw = await startRawServer((socket) => {
      socket.end(microHttpReply(200, JSON.stringify(PING)).slice(0, -10));
    });
    const client = new ClhClient(raw.path);
    expectFailure(await failure(client.ping()), 'protocol', 'vmm.ping');
  });

  it('replies that are not what the spec promises are protocol errors', async () => {
    const fake = await startFake();
    const client = new ClhClient(fake.socketPath);
    fake.answerNext(() => ({ status: 200, text: '<html>' }));
    expectFailure(await failure(client.info()), 'protocol', 'vm.info', /not JSON/);
    fake.answerNext(() => ({ status: 200, body: { config: microVmConfig, state: 'Booting' } }));
    expectFailure(await failure(client.info()), 'protocol', 'vm.info', /"state" "Booting"/);
    fake.answerNext(() => ({ status: 204 }));
    expectFailure(await failure(client.ping()), 'protocol', 'vmm.ping', /expected 200/);
    fake.answerNext(() => ({ status: 200, body: { id: '_fs0' } }));
    expectFailure(await failure(client.addFs(storageFs)), 'protocol', 'vm.add-fs', /"bdf"/);
    fake.answerNext(() => ({ status: 302 }));
    expectFailure(await failure(client.boot()), 'protocol', 'vm.boot', /302/);
  });
});
