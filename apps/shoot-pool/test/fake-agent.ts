// A stand-in for the guest agent on a Unix socket, speaking the same frames, whose answers
// each test scripts. The real agent is exercised by qemu.hypervisor.test.ts.
import net from 'node:net';
import { FrameDecoder, encodeFrame, type Frame } from '../src/agent/protocol';

export interface FakeRequest {
  id: number;
  op: string;
  header: Record<string, unknown>;
  blobs: Buffer[];
  socket: net.Socket;
  /** Answers with `ok: true` plus the fields, and blobs. */
  reply(fields?: object, blobs?: Buffer[]): void;
  /** Answers with `ok: false` and the agent's error. */
  fail(error: object): void;
}

export class FakeAgent {
  readonly requests: FakeRequest[] = [];
  readonly connections: net.Socket[] = [];
  #server: net.Server | undefined;

  constructor(
    readonly socketPath: string,
    public answer: (request: FakeRequest) => void = (request) => request.reply({}),
  ) {}

  async listen(): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(this.socketPath, resolve));
  }

  /** Serves a connection that reached the guest some other way (a hybrid vsock). */
  accept(socket: net.Socket): void {
    this.connections.push(socket);
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const frame of frames) this.#handle(socket, frame);
    });
  }

  /** Drops every open connection, as a VMM that died would. */
  dropConnections(): void {
    for (const socket of this.connections.splice(0)) socket.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) await new Promise((resolve) => server.close(resolve));
  }

  #handle(socket: net.Socket, frame: Frame): void {
    const header = frame.header as Record<string, unknown>;
    const id = Number(header.id);
    const request: FakeRequest = {
      id,
      op: String(header.op),
      header,
      blobs: frame.blobs,
      socket,
      reply: (fields = {}, blobs = []) => {
        if (!socket.destroyed) socket.write(encodeFrame({ id, ok: true, ...fields }, blobs));
      },
      fail: (error) => {
        if (!socket.destroyed) socket.write(encodeFrame({ id, ok: false, error }));
      },
    };
    this.requests.push(request);
    this.answer(request);
  }
}

export const PING_FIELDS = { version: 1, uptimeMs: 5, epochMs: 1_700_000_000_000, reseeds: 0 };
