import http from 'node:http';
import { ClhError } from './errors';
import { CLH_ENDPOINTS, endpointPath, type ClhEndpoint } from './endpoints';

/** A reply is read whole into memory; nothing CH answers comes near this. */
const MAX_REPLY_BYTES = 4 * 1024 * 1024;

export interface ApiReply {
  status: number;
  body: Buffer;
}

/**
 * Sends one request to CH's API socket on a connection of its own and reads the whole
 * reply. CH's HTTP server (micro_http) ignores `Connection` and answers `keep-alive`, so
 * the reply is framed by its Content-Length and this side closes the connection; a
 * request body is always sent with an explicit Content-Length (0 when empty) because
 * micro_http reads exactly that many bytes.
 */
export function sendApiRequest(
  socketPath: string,
  endpoint: ClhEndpoint,
  body: unknown,
  timeoutMs: number,
): Promise<ApiReply> {
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body), 'utf8');
  const headers: http.OutgoingHttpHeaders = {
    Host: 'localhost',
    Accept: 'application/json',
    Connection: 'close',
    'Content-Length': payload.length,
  };
  if (body !== undefined) headers['Content-Type'] = 'application/json';

  return new Promise((resolve, reject) => {
    let connected = false;
    let settled = false;
    const settle = (outcome: ApiReply | ClhError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (outcome instanceof ClhError) {
        request.destroy();
        reject(outcome);
      } else {
        resolve(outcome);
      }
    };

    const request = http.request({
      socketPath,
      method: CLH_ENDPOINTS[endpoint].method,
      path: endpointPath(endpoint),
      headers,
      // No agent: a fresh connection per request, never pooled or reused.
      agent: false,
    });
    const timer = setTimeout(() => {
      settle(new ClhError('timeout', endpoint, `no complete reply within ${timeoutMs} ms`));
    }, timeoutMs);

    request.on('socket', (socket) => {
      socket.once('connect', () => {
        connected = true;
      });
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      settle(connectionError(endpoint, socketPath, connected, error));
    });
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_REPLY_BYTES) {
          settle(new ClhError('protocol', endpoint, `reply larger than ${MAX_REPLY_BYTES} bytes`));
        } else {
          chunks.push(chunk);
        }
      });
      response.on('error', (error) => {
        settle(new ClhError('protocol', endpoint, 'reply cut short', { cause: error }));
      });
      response.on('end', () => {
        if (!response.complete) {
          settle(new ClhError('protocol', endpoint, 'reply cut short'));
          return;
        }
        settle({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) });
      });
    });
    request.end(payload);
  });
}

function connectionError(
  endpoint: ClhEndpoint,
  socketPath: string,
  connected: boolean,
  error: NodeJS.ErrnoException,
): ClhError {
  if (!connected) {
    // ENOENT: no VMM created the socket (yet); ECONNREFUSED: a stale socket file of a VMM
    // that is gone; EACCES, ENOTSOCK: the path is not CH's socket.
    return new ClhError(
      'unreachable',
      endpoint,
      `cannot connect to ${socketPath}: ${error.code ?? error.message}`,
      {
        cause: error,
      },
    );
  }
  if (error.code?.startsWith('HPE_')) {
    return new ClhError('protocol', endpoint, `malformed HTTP reply (${error.code})`, {
      cause: error,
    });
  }
  // The VMM closed or reset the connection before it answered: it died or dropped us.
  return new ClhError(
    'protocol',
    endpoint,
    `connection closed without a reply (${error.code ?? error.message})`,
    {
      cause: error,
    },
  );
}
