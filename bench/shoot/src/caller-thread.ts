// The bench's caller, in a thread of its own (see caller.ts): one POST /shoot per message,
// timed from the request to the parsed answer, as a caller measures it.
import { parentPort } from 'node:worker_threads';

interface ShootAsk {
  id: number;
  url: string;
  command: string[];
}

const port = parentPort!;
port.on('message', ({ id, url, command }: ShootAsk) => {
  const started = performance.now();
  void (async () => {
    const response = await fetch(`${url}/shoot`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command, timeout: 10_000 }),
    });
    const body = (await response.json()) as { exitCode?: number; error?: string };
    const ms = performance.now() - started;
    if (response.status !== 200 || body.exitCode !== 0) {
      throw new Error(`shoot ${command.join(' ')}: ${response.status} ${JSON.stringify(body)}`);
    }
    return ms;
  })().then(
    (ms) => port.postMessage({ id, ms }),
    (error: unknown) => port.postMessage({ id, error: String(error) }),
  );
});
