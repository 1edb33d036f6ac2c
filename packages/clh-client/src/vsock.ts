import net from 'node:net';
import { ClhError } from './errors';

export interface VsockConnectOptions {
  /** Deadline of connecting and of the handshake; 5 s by default. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5_000;
/** `OK 4294967295\n` is 14 bytes: a longer first line is not CH's answer. */
const MAX_REPLY_LINE = 64;
const ACCEPTED = /^OK (\d{1,10})$/;

/**
 * Opens a stream to `port` inside the guest through CH's hybrid vsock: connect to the Unix
 * socket given as `VsockConfig.socket`, send `CONNECT <port>\n`, and read CH's `OK
 * <hostPort>\n`. The socket that is returned carries the guest's stream from its first
 * byte: whatever arrived after the OK line is put back in front of the stream, and the
 * stream is left unread, so a `data` listener or a pipe attached later sees it all.
 * CH answers a CONNECT that no guest listener takes by closing the connection: that is
 * `rejected`; a reply that is not an OK line is `protocol`. Once it resolves, the socket's
 * errors are the caller's: attach an `error` listener.
 */
export function connectVsock(
  udsPath: string,
  port: number,
  options: VsockConnectOptions = {},
): Promise<net.Socket> {
  if (!Number.isInteger(port) || port < 0 || port > 0xffffffff) {
    return Promise.reject(new RangeError(`vsock port ${port} is not a 32-bit unsigned integer`));
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: udsPath });
    let connected = false;
    let received = Buffer.alloc(0);

    const detach = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('error', onError);
    };
    const fail = (error: ClhError) => {
      detach();
      socket.destroy();
      reject(error);
    };

    const onConnect = () => {
      connected = true;
      socket.write(`CONNECT ${port}\n`);
    };
    // `readable` and read() rather than `data`: the socket never starts flowing, so no
    // byte of the guest's stream can be emitted before the caller listens.
    const onReadable = () => {
      for (let chunk = readChunk(socket); chunk !== null; chunk = readChunk(socket)) {
        received = Buffer.concat([received, chunk]);
        const newline = received.indexOf('\n');
        if (newline === -1) {
          if (received.length > MAX_REPLY_LINE) {
            fail(garbled(received));
            return;
          }
          continue;
        }
        const line = received.subarray(0, newline).toString('latin1');
        if (!ACCEPTED.test(line)) {
          fail(garbled(received.subarray(0, newline)));
          return;
        }
        const rest = received.subarray(newline + 1);
        detach();
        if (rest.length > 0) socket.unshift(rest);
        resolve(socket);
        return;
      }
    };
    const onEnd = () => {
      fail(
        received.length === 0
          ? new ClhError(
              'rejected',
              'vsock.connect',
              `${udsPath} closed the connection after CONNECT ${port}: nothing in the guest accepted it`,
            )
          : garbled(received),
      );
    };
    const onError = (error: NodeJS.ErrnoException) => {
      if (!connected) {
        fail(
          new ClhError(
            'unreachable',
            'vsock.connect',
            `cannot connect to ${udsPath}: ${error.code ?? error.message}`,
            { cause: error },
          ),
        );
        return;
      }
      // A reset during the handshake is CH dropping the CONNECT, as a close is.
      fail(
        new ClhError(
          'rejected',
          'vsock.connect',
          `${udsPath} dropped CONNECT ${port}: ${error.code ?? error.message}`,
          { cause: error },
        ),
      );
    };
    const timer = setTimeout(() => {
      fail(
        new ClhError(
          'timeout',
          'vsock.connect',
          `no answer to CONNECT ${port} on ${udsPath} within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);

    socket.on('connect', onConnect);
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('error', onError);
  });
}

function readChunk(socket: net.Socket): Buffer | null {
  return socket.read() as Buffer | null;
}

function garbled(reply: Buffer): ClhError {
  const text = reply.subarray(0, MAX_REPLY_LINE).toString('latin1');
  return new ClhError(
    'protocol',
    'vsock.connect',
    `expected "OK <port>" in answer to CONNECT, got ${JSON.stringify(text)}`,
  );
}
