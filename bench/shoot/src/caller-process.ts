// The bench's caller, a process of its own (see caller.ts): one POST /shoot per message
// (or, without a command, a GET of `path`: the bare HTTP round trip to the same daemon),
// timed from the request to the parsed answer, as a caller measures it. Node's `http`
// with a keep-alive agent rather than `fetch`: undici's `fetch` spent ~2.5 ms of its own
// per request here (a 400 answered in 4.6 ms against 1.5 ms), the client's cost, not
// the service's.
import http from 'node:http';

interface ShootAsk {
  id: number;
  url: string;
  command?: string[];
  path?: string;
}

const agent = new http.Agent({ keepAlive: true });

function send(url: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      body === undefined
        ? { method: 'GET', agent }
        : {
            method: 'POST',
            agent,
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
            },
          },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

process.on('message', ({ id, url, command, path }: ShootAsk) => {
  const started = performance.now();
  void (async () => {
    if (command === undefined) {
      const response = await send(`${url}${path}`);
      JSON.parse(response.text);
      const ms = performance.now() - started;
      if (response.status !== 200) throw new Error(`GET ${path}: ${response.status}`);
      return ms;
    }
    const response = await send(`${url}/shoot`, JSON.stringify({ command, timeout: 10_000 }));
    const body = JSON.parse(response.text) as { exitCode?: number; error?: string };
    const ms = performance.now() - started;
    if (response.status !== 200 || body.exitCode !== 0) {
      throw new Error(`shoot ${command.join(' ')}: ${response.status} ${response.text}`);
    }
    return ms;
  })().then(
    (ms) => process.send!({ id, ms }),
    (error: unknown) => process.send!({ id, error: String(error) }),
  );
});
